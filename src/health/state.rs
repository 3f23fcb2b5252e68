//! The up/down state machine of one check target: `fall` consecutive failures take it
//! down, `rise` consecutive successes bring it back. Pure, so it is tested without I/O.

use std::time::{Duration, SystemTime};

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    Ok { latency: Duration },
    Failed { reason: String, latency: Duration },
}

impl ProbeResult {
    pub fn is_ok(&self) -> bool {
        matches!(self, ProbeResult::Ok { .. })
    }
    pub fn latency(&self) -> Duration {
        match self {
            ProbeResult::Ok { latency } | ProbeResult::Failed { latency, .. } => *latency,
        }
    }
}

/// The state of one target and the history the thresholds need.
#[derive(Debug, Clone)]
pub struct TargetState {
    pub up: bool,
    /// Consecutive results against the current state.
    pub streak: u32,
    pub last: Option<ProbeResult>,
    pub last_change: SystemTime,
    pub checks: u64,
    pub failures: u64,
}

/// A change of state, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub up: bool,
    pub reason: String,
}

impl TargetState {
    pub fn new(initially_up: bool) -> Self {
        Self {
            up: initially_up,
            streak: 0,
            last: None,
            last_change: SystemTime::now(),
            checks: 0,
            failures: 0,
        }
    }

    /// Records a probe result; returns the transition when the state changed.
    pub fn record(&mut self, result: ProbeResult, rise: u32, fall: u32) -> Option<Transition> {
        self.checks += 1;
        let ok = result.is_ok();
        if !ok {
            self.failures += 1;
        }
        let reason = match &result {
            ProbeResult::Ok { latency } => format!("ok in {} ms", latency.as_millis()),
            ProbeResult::Failed { reason, .. } => reason.clone(),
        };
        self.last = Some(result);
        // A result agreeing with the current state resets the count against it.
        if ok == self.up {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = if self.up { fall } else { rise };
        if self.streak >= needed.max(1) {
            self.up = ok;
            self.streak = 0;
            self.last_change = SystemTime::now();
            return Some(Transition { up: ok, reason });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> ProbeResult {
        ProbeResult::Ok {
            latency: Duration::from_millis(1),
        }
    }
    fn bad() -> ProbeResult {
        ProbeResult::Failed {
            reason: "refused".into(),
            latency: Duration::ZERO,
        }
    }

    #[test]
    fn goes_down_after_fall_failures_and_up_after_rise_successes() {
        let mut s = TargetState::new(true);
        assert_eq!(s.record(bad(), 2, 3), None);
        assert_eq!(s.record(bad(), 2, 3), None);
        let t = s.record(bad(), 2, 3).expect("down after 3");
        assert!(!t.up);
        assert_eq!(t.reason, "refused");
        assert_eq!(s.record(ok(), 2, 3), None);
        assert!(s.record(ok(), 2, 3).expect("up after 2").up);
        assert_eq!((s.checks, s.failures), (5, 3));
    }

    #[test]
    fn alternating_results_never_flap() {
        let mut s = TargetState::new(true);
        for i in 0..100 {
            let r = if i % 2 == 0 { bad() } else { ok() };
            assert_eq!(s.record(r, 2, 2), None, "step {i}");
        }
        assert!(s.up);
    }
}
