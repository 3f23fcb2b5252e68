//! L5, the network shells: UDP threads, TCP on tokio, the zone-transfer loop, NOTIFY, the
//! query log, the traffic settings a reload changes, and the coarse clock the engine is
//! handed. Each holds only its loop and
//! hands every message to `engine::answer`.

pub mod clock;
pub mod dnstap;
pub mod notify;
pub mod querylog;
pub mod settings;
pub mod tcp;
pub mod udp;
pub mod xfr;
