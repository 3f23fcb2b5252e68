//! Deciding an endpoint's health from the votes of several instances (vantages): each
//! instance publishes its own check's state, after its own rise/fall; every instance applies
//! the same rule to the same set of live votes, so they agree. Pure: the store, the leases
//! and the clock live in `monitor::cluster`.
//!
//! The rules are NS1's monitoring policies and Route 53's healthy fraction:
//!
//! | policy | the endpoint is down when |
//! |---|---|
//! | `quorum` (default) | more than half of the live votes say down |
//! | `all` | every live vote says down |
//! | `one` | any vote says down |
//! | `at_least = k` | at least k votes say down |
//! | `healthy_fraction = p` | not more than p × live votes say up (Route 53: p = 0.18) |
//!
//! With fewer live votes than `min_votes` there is no shared decision: the instance decides
//! from its own check alone (static stability), and says so.

use serde::{Deserialize, Serialize};

/// How the votes on one endpoint become a decision.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VotePolicy {
    Quorum,
    All,
    One,
    AtLeast(u32),
    HealthyFraction(f64),
}

/// A pool's rule: the policy and the fewest live votes it decides with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct QuorumRule {
    pub policy: VotePolicy,
    pub min_votes: u32,
}

impl Default for QuorumRule {
    fn default() -> Self {
        Self {
            policy: VotePolicy::Quorum,
            min_votes: 2,
        }
    }
}

/// The live votes on one endpoint, this instance's own included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub up: u32,
    pub down: u32,
    /// Votes left out: another definition of the check (another config revision).
    pub ignored: u32,
}

impl Tally {
    pub fn live(&self) -> u32 {
        self.up + self.down
    }

    pub fn add(&mut self, up: bool) {
        if up {
            self.up += 1;
        } else {
            self.down += 1;
        }
    }
}

impl QuorumRule {
    /// Up or down by the votes; `None` when there are too few live votes to decide (the
    /// caller falls back to its own check).
    pub fn decide(&self, t: &Tally) -> Option<bool> {
        let live = t.live();
        if live == 0 || live < self.min_votes {
            return None;
        }
        let down = match self.policy {
            VotePolicy::Quorum => t.down * 2 > live,
            VotePolicy::All => t.down == live,
            VotePolicy::One => t.down >= 1,
            VotePolicy::AtLeast(k) => t.down >= k.max(1),
            VotePolicy::HealthyFraction(p) => f64::from(t.up) <= p * f64::from(live),
        };
        Some(!down)
    }

    /// The rule in words, for `check`, `/status` and `explain`.
    pub fn describe(&self) -> String {
        let policy = match self.policy {
            VotePolicy::Quorum => "quorum (down when most votes say down)".to_string(),
            VotePolicy::All => "all (down when every vote says down)".to_string(),
            VotePolicy::One => "one (down when any vote says down)".to_string(),
            VotePolicy::AtLeast(k) => format!("at_least {k} (down when {k} votes say down)"),
            VotePolicy::HealthyFraction(p) => {
                format!("healthy_fraction {p} (up while more than {p} of the votes say up)")
            }
        };
        format!("{policy}, at least {} live votes", self.min_votes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(up: u32, down: u32) -> Tally {
        Tally {
            up,
            down,
            ignored: 0,
        }
    }

    fn rule(policy: VotePolicy) -> QuorumRule {
        QuorumRule {
            policy,
            min_votes: 2,
        }
    }

    #[test]
    fn quorum_needs_a_majority_down() {
        let r = rule(VotePolicy::Quorum);
        assert_eq!(r.decide(&tally(2, 1)), Some(true));
        assert_eq!(r.decide(&tally(1, 2)), Some(false));
        // A tie is not a majority.
        assert_eq!(r.decide(&tally(2, 2)), Some(true));
        assert_eq!(r.decide(&tally(0, 3)), Some(false));
    }

    #[test]
    fn all_one_and_at_least() {
        assert_eq!(rule(VotePolicy::All).decide(&tally(1, 2)), Some(true));
        assert_eq!(rule(VotePolicy::All).decide(&tally(0, 3)), Some(false));
        assert_eq!(rule(VotePolicy::One).decide(&tally(2, 1)), Some(false));
        assert_eq!(rule(VotePolicy::One).decide(&tally(3, 0)), Some(true));
        assert_eq!(
            rule(VotePolicy::AtLeast(2)).decide(&tally(2, 1)),
            Some(true)
        );
        assert_eq!(
            rule(VotePolicy::AtLeast(2)).decide(&tally(1, 2)),
            Some(false)
        );
    }

    #[test]
    fn healthy_fraction_is_route_53s_rule() {
        let r = rule(VotePolicy::HealthyFraction(0.18));
        // 1 of 10 up is 10 %: not more than 18 %, down; 2 of 10 is 20 %: up.
        assert_eq!(r.decide(&tally(1, 9)), Some(false));
        assert_eq!(r.decide(&tally(2, 8)), Some(true));
    }

    #[test]
    fn too_few_votes_decide_nothing() {
        let r = rule(VotePolicy::Quorum);
        assert_eq!(r.decide(&tally(0, 1)), None);
        assert_eq!(r.decide(&tally(0, 0)), None);
        let lone = QuorumRule {
            policy: VotePolicy::Quorum,
            min_votes: 1,
        };
        assert_eq!(lone.decide(&tally(0, 1)), Some(false));
    }
}
