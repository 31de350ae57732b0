//! A compile thread: runs one code generator off the dispatcher's thread, so a slow
//! optimizing tier never stalls the guest. The dispatcher keeps running the block's
//! current (lower-tier) code and links the new code in when it arrives; since every
//! tier is exact, when that happens changes only the speed, never the results.
//!
//! A request carries everything the code generator would otherwise ask the cache for
//! (the exit slot of each jump target, the plan of each access), prepared on the
//! dispatcher's thread. Jobs are handled in order, so after a flush request is
//! acknowledged no compile is running and none will write to the code memory.

use crate::jit::codegen::{AccessPlan, Backend, CompileEnv, Translation};
use crate::jit::codemem::CodePool;
use crate::jit::region::Region;
use crate::jit::JitError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

/// Builds the code generator on the compile thread (code generators need not be `Send`).
pub type BackendFactory = Box<dyn FnOnce() -> Result<Box<dyn Backend>, JitError> + Send>;

/// One block to compile, with what its code generator needs.
pub struct Request {
    pub region: Region,
    /// Code of the block's current translation (to check, on arrival, that it is still
    /// the one in the cache).
    pub replaces: u64,
    /// The cache's flush count when the request was made.
    pub epoch: u64,
    pub arena_base: u64,
    pub jump_cache: u64,
    pub near: bool,
    pub hot_counter: Option<u64>,
    pub target_cell: Option<u64>,
    pub ir: bool,
    /// Exit slot per jump target.
    pub slots: HashMap<u32, u64>,
    /// Plan per access pc.
    pub plans: HashMap<u32, AccessPlan>,
}

enum Job {
    Compile(Box<Request>),
    Flush,
}

/// What the compile thread sends back.
pub enum Done {
    Compiled { request: Box<Request>, result: Result<Translation, JitError>, compile_ns: u64 },
    Flushed(Result<(), JitError>),
}

/// The handle of a compile thread.
pub struct Worker {
    /// Set when the cache goes away: queued compiles are dropped, not done.
    abandon: Arc<AtomicBool>,
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
    /// Compile requests sent and not yet received back.
    pub in_flight: usize,
}

impl Worker {
    /// Starts a compile thread with the code generator `make` builds there.
    pub fn start(name: &str, make: BackendFactory, pool: CodePool) -> Result<Worker, JitError> {
        let (jobs, job_rx) = channel::<Job>();
        let (done_tx, done) = channel::<Done>();
        let abandon = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&abandon);
        let thread = std::thread::Builder::new()
            .name(format!("rvdbt-{name}"))
            .spawn(move || serve(make, pool, job_rx, done_tx, &stop))
            .map_err(|e| JitError::Setup(format!("cannot start the compile thread: {e}")))?;
        Ok(Worker { abandon, jobs: Some(jobs), done, thread: Some(thread), in_flight: 0 })
    }

    fn send(&self, job: Job) -> Result<(), JitError> {
        let gone = || JitError::Internal("the compile thread stopped".into());
        self.jobs.as_ref().ok_or_else(gone)?.send(job).map_err(|_| gone())
    }

    /// Queues a compile.
    pub fn request(&mut self, request: Request) -> Result<(), JitError> {
        self.send(Job::Compile(Box::new(request)))?;
        self.in_flight += 1;
        Ok(())
    }

    /// A finished compile, if one is ready.
    pub fn try_take(&mut self) -> Option<Done> {
        let done = self.done.try_recv().ok()?;
        if matches!(done, Done::Compiled { .. }) {
            self.in_flight -= 1;
        }
        Some(done)
    }

    /// Drops the code generator's code, waiting until the thread is idle. Compiles
    /// still queued are finished first and returned (the caller discards them).
    pub fn flush(&mut self) -> Result<Vec<Done>, JitError> {
        self.send(Job::Flush)?;
        let mut earlier = Vec::new();
        loop {
            match self.done.recv() {
                Ok(Done::Flushed(r)) => {
                    r?;
                    return Ok(earlier);
                }
                Ok(d) => {
                    self.in_flight -= 1;
                    earlier.push(d);
                }
                Err(_) => return Err(JitError::Internal("the compile thread stopped".into())),
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // The run is over: what is queued is not needed. The thread finishes the compile
        // it may be in (into the pool it shares, which outlives it) and ends; nothing
        // waits for it.
        self.abandon.store(true, Ordering::Relaxed);
        self.jobs.take();
        self.thread.take();
    }
}

/// The compile thread's loop.
fn serve(make: BackendFactory, pool: CodePool, jobs: Receiver<Job>, done: Sender<Done>, abandon: &AtomicBool) {
    let mut backend = make();
    for job in jobs {
        if abandon.load(Ordering::Relaxed) {
            return;
        }
        let reply = match (&mut backend, job) {
            (Ok(b), Job::Flush) => Done::Flushed(b.flush()),
            (Err(e), Job::Flush) => Done::Flushed(Err(JitError::Setup(e.to_string()))),
            (Err(e), Job::Compile(request)) => {
                Done::Compiled { request, result: Err(JitError::Setup(e.to_string())), compile_ns: 0 }
            }
            (Ok(b), Job::Compile(request)) => {
                let start = Instant::now();
                let result = compile(b.as_mut(), &request, &pool);
                Done::Compiled { request, result, compile_ns: start.elapsed().as_nanos() as u64 }
            }
        };
        if done.send(reply).is_err() {
            return;
        }
    }
}

fn compile(backend: &mut dyn Backend, r: &Request, pool: &CodePool) -> Result<Translation, JitError> {
    let missing = std::cell::Cell::new(None);
    let mut slot_for = |target: u32| {
        r.slots.get(&target).copied().unwrap_or_else(|| {
            missing.set(Some(target));
            0
        })
    };
    let mut plan_for = |pc: u32| {
        r.plans.get(&pc).copied().unwrap_or_else(|| {
            missing.set(Some(pc));
            AccessPlan { state: crate::jit::access::AccessState::Variable, record: 0 }
        })
    };
    let mut env = CompileEnv {
        arena_base: r.arena_base,
        jump_cache: r.jump_cache,
        near: r.near,
        pool,
        hot_counter: r.hot_counter,
        target_cell: r.target_cell,
        ir: r.ir,
        slot_for: &mut slot_for,
        plan_for: &mut plan_for,
    };
    let t = backend.compile(&r.region, &mut env)?;
    match missing.get() {
        // The code would use a slot or plan that was not prepared: it must never run.
        Some(pc) => {
            Err(JitError::Internal(format!("compile request for {:#010x} lacks {pc:#010x}", r.region.head().pc)))
        }
        None => Ok(t),
    }
}
