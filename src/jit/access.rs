//! The per-access state machine: one record per guest load/store (keyed by its pc)
//! that decides how translated code performs the access.
//!
//! ```text
//!            same region N times in a row                any other region
//!   NAIVE ─────────────────────────────▶ COMMITTED(r) ───────────────────▶ VARIABLE
//!     │                                                                      ▲
//!     └──────────────────── a different region ──────────────────────────────┘
//! ```
//!
//! - NAIVE: a call of a profiling helper that performs the access and observes its region.
//! - COMMITTED(RAM): one inline host access into the arena; a non-RAM page faults and the
//!   fault path makes the access VARIABLE.
//! - COMMITTED(device): a bounds check against the device, then a direct call of its
//!   function; outside the device, the profiling helper runs and the access becomes
//!   VARIABLE.
//! - VARIABLE: a call of the generic path, forever.
//!
//! "Region" here is the class the translated code can specialize on: all RAM is one
//! class (the arena's page protections make any RAM address safe inline), each device
//! is its own. Every state change asks for the blocks containing the access to be
//! recompiled; code is never patched.

use crate::memory::{Device, Memory, RegionKind};
use crate::stats::{StateCounts, TransitionCounts};

/// What translated code can specialize an access on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegionClass {
    Ram,
    Device(Device),
}

impl RegionClass {
    /// The class of the region holding `addr`, if any.
    pub fn of(mem: &Memory, addr: u32) -> Option<RegionClass> {
        mem.region_of(addr).map(|r| match r.kind {
            RegionKind::Ram { .. } => RegionClass::Ram,
            RegionKind::Device(d) => RegionClass::Device(d),
        })
    }
}

/// The state of one access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessState {
    /// Profiling: `seen` consecutive observations of `class` so far.
    Naive {
        class: Option<RegionClass>,
        seen: u32,
    },
    Committed(RegionClass),
    Variable,
}

impl AccessState {
    /// Does translated code for an access in this state feed its record through a
    /// profiling helper (NAIVE; COMMITTED to a device, on its slow path)? Those helpers
    /// are what cuts `Cpu::budget_end` when the state changes.
    pub fn profiles(self) -> bool {
        matches!(self, AccessState::Naive { .. } | AccessState::Committed(RegionClass::Device(_)))
    }
}

/// How translation memory accesses start (`--mem`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemMode {
    /// Every access calls the generic path.
    Calls,
    /// The state machine, starting NAIVE.
    Adaptive,
    /// Every access starts COMMITTED(RAM) and relies on the fault path.
    Fastmem,
}

impl MemMode {
    pub fn name(self) -> &'static str {
        match self {
            MemMode::Calls => "calls",
            MemMode::Adaptive => "adaptive",
            MemMode::Fastmem => "fastmem",
        }
    }

    pub fn initial_state(self) -> AccessState {
        match self {
            MemMode::Calls => AccessState::Variable,
            MemMode::Adaptive => AccessState::Naive { class: None, seen: 0 },
            MemMode::Fastmem => AccessState::Committed(RegionClass::Ram),
        }
    }
}

/// A state change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transition {
    NaiveToCommitted,
    NaiveToVariable,
    CommittedToVariable,
}

/// The state machine counts its own transitions.
impl TransitionCounts {
    pub fn add(&mut self, t: Transition) {
        match t {
            Transition::NaiveToCommitted => self.naive_to_committed += 1,
            Transition::NaiveToVariable => self.naive_to_variable += 1,
            Transition::CommittedToVariable => self.committed_to_variable += 1,
        }
    }
}

/// The record of one guest load/store. Translated code holds its address (profiling
/// helper calls pass it), so the cache keeps records at fixed addresses
/// ([`crate::jit::shared::SharedBox`]) for as long as code that holds them may run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessRecord {
    /// Guest pc of the load/store.
    pub pc: u32,
    pub state: AccessState,
    /// N: consecutive observations of one region that commit the access.
    pub commit_after: u32,
}

impl AccessRecord {
    pub fn new(pc: u32, mode: MemMode, commit_after: u32) -> AccessRecord {
        AccessRecord { pc, state: mode.initial_state(), commit_after }
    }

    /// Records one observed access to `class` (`None`: no region). Returns the
    /// transition, if the state changed.
    pub fn observe(&mut self, class: Option<RegionClass>) -> Option<Transition> {
        let commit_after = self.commit_after;
        let (next, transition) = match self.state {
            AccessState::Naive { class: seen_class, seen } => match (seen_class, class) {
                (_, None) => return None,
                (None, Some(c)) if commit_after <= 1 => (AccessState::Committed(c), Some(Transition::NaiveToCommitted)),
                (None, Some(c)) => (AccessState::Naive { class: Some(c), seen: 1 }, None),
                (Some(prev), Some(c)) if prev == c => {
                    if seen + 1 >= commit_after {
                        (AccessState::Committed(c), Some(Transition::NaiveToCommitted))
                    } else {
                        (AccessState::Naive { class: Some(c), seen: seen + 1 }, None)
                    }
                }
                (Some(_), Some(_)) => (AccessState::Variable, Some(Transition::NaiveToVariable)),
            },
            AccessState::Committed(c) if class == Some(c) => return None,
            AccessState::Committed(_) => (AccessState::Variable, Some(Transition::CommittedToVariable)),
            AccessState::Variable => return None,
        };
        self.state = next;
        transition
    }

    /// The fault path: an inline access hit a page that is not RAM.
    pub fn make_variable(&mut self) -> Option<Transition> {
        let t = match self.state {
            AccessState::Variable => return None,
            AccessState::Naive { .. } => Transition::NaiveToVariable,
            AccessState::Committed(_) => Transition::CommittedToVariable,
        };
        self.state = AccessState::Variable;
        Some(t)
    }
}

/// Counts records per state, for `--stats`.
pub fn count_states<'a>(records: impl Iterator<Item = &'a AccessRecord>) -> StateCounts {
    let mut c = StateCounts::default();
    for r in records {
        match r.state {
            AccessState::Naive { .. } => c.naive += 1,
            AccessState::Committed(RegionClass::Ram) => c.committed_ram += 1,
            AccessState::Committed(RegionClass::Device(_)) => c.committed_device += 1,
            AccessState::Variable => c.variable += 1,
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: Option<RegionClass> = Some(RegionClass::Ram);
    const UART: Option<RegionClass> = Some(RegionClass::Device(Device::Uart));

    #[test]
    fn naive_commits_after_n_observations_of_one_region() {
        let mut r = AccessRecord::new(0x100, MemMode::Adaptive, 3);
        assert_eq!(r.observe(RAM), None);
        assert_eq!(r.observe(RAM), None);
        assert_eq!(r.state, AccessState::Naive { class: RAM, seen: 2 });
        assert_eq!(r.observe(RAM), Some(Transition::NaiveToCommitted));
        assert_eq!(r.state, AccessState::Committed(RegionClass::Ram));
        assert_eq!(r.observe(RAM), None, "committed and still right: no change");
    }

    #[test]
    fn commit_after_one_commits_at_once() {
        let mut r = AccessRecord::new(0, MemMode::Adaptive, 1);
        assert_eq!(r.observe(UART), Some(Transition::NaiveToCommitted));
        assert_eq!(r.state, AccessState::Committed(RegionClass::Device(Device::Uart)));
    }

    #[test]
    fn naive_sees_another_region_and_becomes_variable() {
        let mut r = AccessRecord::new(0, MemMode::Adaptive, 3);
        r.observe(RAM);
        assert_eq!(r.observe(UART), Some(Transition::NaiveToVariable));
        assert_eq!(r.state, AccessState::Variable);
    }

    #[test]
    fn committed_leaves_for_variable_and_variable_never_leaves() {
        let mut r = AccessRecord::new(0, MemMode::Fastmem, 3);
        assert_eq!(r.state, AccessState::Committed(RegionClass::Ram));
        assert_eq!(r.observe(UART), Some(Transition::CommittedToVariable));
        for class in [RAM, UART, None, RAM] {
            assert_eq!(r.observe(class), None);
            assert_eq!(r.state, AccessState::Variable);
        }
        assert_eq!(r.make_variable(), None);
    }

    #[test]
    fn unmapped_observations_change_nothing() {
        let mut r = AccessRecord::new(0, MemMode::Adaptive, 3);
        r.observe(RAM);
        assert_eq!(r.observe(None), None);
        assert_eq!(r.state, AccessState::Naive { class: RAM, seen: 1 });
    }

    #[test]
    fn fault_path_makes_committed_variable() {
        let mut r = AccessRecord::new(0, MemMode::Fastmem, 3);
        assert_eq!(r.make_variable(), Some(Transition::CommittedToVariable));
        let mut n = AccessRecord::new(0, MemMode::Adaptive, 3);
        assert_eq!(n.make_variable(), Some(Transition::NaiveToVariable));
    }

    #[test]
    fn calls_mode_starts_variable() {
        assert_eq!(AccessRecord::new(0, MemMode::Calls, 3).state, AccessState::Variable);
    }
}
