//! Answers of table-driven names (geo, nearest, latency) kept per thread by what decided
//! them: the name, the type, and the order the client's network maps to. Every network that
//! maps to one order gets the same records (for one health view), so a flood of ever new
//! ECS networks costs the table lookup and a copy instead of the decision, the pick and the
//! writing. The UDP answer cache keys these answers by the order as well (through
//! [`Basis::decided`]); this serves what it does not: TCP, a server with the cache off, and
//! an order's answer while the cache's admission filter has not yet let it in.
//!
//! Kept answers are keyed by the snapshot's serial and the health view's version as well,
//! so a reload or a change of health is never answered from what was kept before. Only
//! answers that are a function of those inputs go in: no random or client-hashed picks, no
//! signatures, and only records owned by the question's name (see
//! [`Sink::answers_since`]).

use std::cell::{Cell, RefCell};

use super::{Basis, Client, Decided, DynamicName, Routing};
use crate::dns::{AnswerMark, Sink, rtype};
use crate::health::HealthView;
use crate::zone::DynamicOutcome;

/// Slots per thread: far more than names × orders × types in use at once.
const SLOTS: usize = 1024;
/// Room for the records of one answer (eight AAAA records take 224 bytes).
const BYTES: usize = 240;

/// What an answer was decided by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MemoKey {
    serial: u64,
    health_version: u64,
    name: u32,
    order: u32,
    qtype: u16,
}

#[derive(Clone, Copy)]
struct Slot {
    key: Option<MemoKey>,
    count: u16,
    len: u16,
    /// Index of the per-datacenter counter the answer counts in (`u32::MAX`: none).
    counter: u32,
    bytes: [u8; BYTES],
}

const EMPTY: Slot = Slot {
    key: None,
    count: 0,
    len: 0,
    counter: u32::MAX,
    bytes: [0; BYTES],
};

thread_local! {
    /// Allocated on the thread's first table-driven answer, never again.
    static MEMO: RefCell<Box<[Slot]>> = RefCell::new(Vec::new().into_boxed_slice());
    static REPLAYED: Cell<u64> = const { Cell::new(0) };
}

/// How many answers this thread copied from the ones it kept (tests watch the memo work).
pub fn replayed_on_this_thread() -> u64 {
    REPLAYED.get()
}

impl MemoKey {
    fn slot(&self) -> usize {
        let v = (u64::from(self.name) << 32 | u64::from(self.order) << 16 | u64::from(self.qtype))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (v >> 40) as usize % SLOTS
    }
}

impl Routing {
    /// [`Routing::answer`] through the thread's kept answers: `serial` is the snapshot's.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn answer_kept<S: Sink>(
        &self,
        serial: u64,
        index: u32,
        owner: &[u8],
        qtype: u16,
        client: &Client,
        health: &HealthView,
        counted: bool,
        sink: &mut S,
    ) -> (DynamicOutcome<'_>, Basis<'_>) {
        let Some((key, name, mut basis)) =
            self.memo_key(serial, index, qtype, client, health, sink)
        else {
            return self.answer(index, owner, qtype, client, health, counted, sink);
        };
        let replayed = MEMO.with_borrow(|memo| {
            let slot = memo.get(key.slot()).filter(|s| s.key == Some(key))?;
            let bytes = slot.bytes.get(..usize::from(slot.len))?;
            sink.replay_answers(owner, bytes, slot.count)
                .then_some(slot.counter)
        });
        if let Some(counter) = replayed {
            REPLAYED.set(REPLAYED.get().wrapping_add(1));
            basis.counter = name.answers.get(counter as usize).map(|c| &**c);
            if counted && let Some(c) = basis.counter {
                c.inc();
            }
            return (DynamicOutcome::Answered, basis);
        }
        let mark = sink.answer_mark(owner);
        let (outcome, mut basis) = self.answer(index, owner, qtype, client, health, counted, sink);
        // Decided by the order as the kept answers are: the answer cache may key it so.
        basis.decided = Some(Decided {
            name: index,
            order: key.order,
        });
        if let (DynamicOutcome::Answered, Some(mark)) = (&outcome, mark) {
            self.keep(key, mark, &basis, sink);
        }
        (outcome, basis)
    }

    /// The key an answer of dynamic name `index` is kept under, the name, and what the
    /// answer depends on (all but its counter); `None` when the answer is not kept (not
    /// table-driven, random, a CNAME, or signed).
    fn memo_key<S: Sink>(
        &self,
        serial: u64,
        index: u32,
        qtype: u16,
        client: &Client,
        health: &HealthView,
        sink: &S,
    ) -> Option<(MemoKey, &DynamicName, Basis<'_>)> {
        let name = self.names.get(index as usize)?;
        let serves = match qtype {
            rtype::A => name.serves_a,
            rtype::AAAA => name.serves_aaaa,
            _ => false,
        };
        if !serves || name.serves_cname || name.draws_at_random() || sink.dnssec_ok() {
            return None;
        }
        let ecs = client.subnet.filter(|&(_, prefix)| prefix > 0);
        let at = self.order_of(index, client.source, ecs.map(|(a, _)| a))?;
        let key = MemoKey {
            serial,
            health_version: health.version(),
            name: index,
            order: at.order,
            qtype,
        };
        let basis = Basis {
            scope: at.scope,
            addr: at.addr,
            from_ecs: at.from_ecs,
            random: false,
            counter: None,
            decided: Some(Decided {
                name: index,
                order: at.order,
            }),
        };
        Some((key, name, basis))
    }

    /// Keeps the records written since `mark` under `key`, when they fit.
    fn keep<S: Sink>(&self, key: MemoKey, mark: AnswerMark, basis: &Basis<'_>, sink: &S) {
        let Some((bytes, count)) = sink.answers_since(mark) else {
            return;
        };
        let (Ok(len), true) = (u16::try_from(bytes.len()), bytes.len() <= BYTES) else {
            return;
        };
        let counter = self
            .names
            .get(key.name as usize)
            .and_then(|n| {
                let wanted = basis.counter?;
                n.answers.iter().position(|c| std::ptr::eq(&**c, wanted))
            })
            .and_then(|i| u32::try_from(i).ok())
            .unwrap_or(u32::MAX);
        MEMO.with_borrow_mut(|memo| {
            if memo.is_empty() {
                *memo = vec![EMPTY; SLOTS].into_boxed_slice();
            }
            if let Some(slot) = memo.get_mut(key.slot()) {
                slot.key = Some(key);
                slot.count = count;
                slot.len = len;
                slot.counter = counter;
                slot.bytes[..bytes.len()].copy_from_slice(bytes);
            }
        });
    }
}
