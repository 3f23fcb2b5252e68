//! Health of endpoints and datacenters, as the query path sees it.
//!
//! The query path reads an immutable [`HealthView`] through an atomic pointer swap; whatever
//! runs the checks builds a new view and publishes it. Indices are those of the routing
//! tables of the snapshot the view was built for; an index the view does not know counts as
//! up, so a view that lags a reload never takes a site out by mistake.

pub mod quorum;
pub mod spec;
pub mod state;
pub mod status;

pub use spec::{CheckKind, CheckSpec, Timing};
pub use status::{
    AdminState, ClusterStatus, DatacenterStatus, EndpointStatus, OverrideTarget, Overrides,
    StateChange, Status, VoteStatus,
};

/// Up/down of every endpoint and every datacenter group, by routing index.
#[derive(Debug, Clone, Default)]
pub struct HealthView {
    endpoint_up: Box<[bool]>,
    group_up: Box<[bool]>,
    /// The snapshot generation these indices belong to.
    generation: u64,
    /// Different for every view built by [`HealthView::new`] (0: all up): per-thread answer
    /// caches drop what they keep when it changes.
    version: u64,
    /// Signatures of the dynamic answer sets this view can produce (signed zones only).
    sigs: std::sync::Arc<crate::dns::sigstore::SigStore>,
}

/// The next [`HealthView::version`].
static NEXT_VERSION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl HealthView {
    /// Everything up: the state before any check has run.
    pub fn all_up() -> Self {
        Self::default()
    }

    pub fn new(endpoint_up: Vec<bool>, group_up: Vec<bool>, generation: u64) -> Self {
        Self {
            endpoint_up: endpoint_up.into_boxed_slice(),
            group_up: group_up.into_boxed_slice(),
            generation,
            version: NEXT_VERSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            sigs: Default::default(),
        }
    }

    /// This view with the signatures of its dynamic answer sets.
    pub fn with_sigs(mut self, sigs: std::sync::Arc<crate::dns::sigstore::SigStore>) -> Self {
        self.sigs = sigs;
        self
    }

    pub fn sigs(&self) -> &std::sync::Arc<crate::dns::sigstore::SigStore> {
        &self.sigs
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Tells views apart: two views with one version say the same of every index.
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn endpoint_up(&self, index: usize) -> bool {
        self.endpoint_up.get(index).copied().unwrap_or(true)
    }

    pub fn group_up(&self, index: usize) -> bool {
        self.group_up.get(index).copied().unwrap_or(true)
    }
}
