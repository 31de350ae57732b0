//! The direct backend: x86-64 emitted per guest instruction, no IR.

use crate::jit::block::Block;
use crate::jit::codegen::{Backend, CompileEnv, Translation};
use crate::jit::JitError;

pub struct DirectBackend {}

impl DirectBackend {
    pub fn new() -> DirectBackend {
        DirectBackend {}
    }
}

impl Backend for DirectBackend {
    fn name(&self) -> &'static str {
        "direct"
    }
    fn compile(&mut self, block: &Block, _env: &mut CompileEnv<'_>) -> Result<Translation, JitError> {
        Err(JitError::Compile { pc: block.pc, msg: "todo".into() })
    }
    fn flush(&mut self) -> Result<(), JitError> {
        Ok(())
    }
}
