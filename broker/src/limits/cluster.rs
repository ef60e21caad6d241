//! Named bounds of a cluster member: node-to-node messages and connections, Raft timing,
//! waits for majorities, and the data groups (re-exported from [`crate::limits`]).

/// Most members `--cluster` may name: every write waits for a majority of them, and the
/// leader sends each one every entry.
pub const CLUSTER_MEMBERS_MAX: usize = 16;
/// Fewest bytes of a cluster secret: the members' proof of it is an HMAC-SHA256 over each
/// connection's TLS keying material, as strong as the secret is hard to guess.
pub const CLUSTER_SECRET_BYTES_MIN: usize = 16;
/// Largest Raft message one node accepts from another (a batch of entries or a snapshot
/// chunk, postcard-encoded).
pub const CLUSTER_RPC_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Receive window of a node-to-node connection once the peer proved the secret (a client's
/// starts far smaller): a leader streams batches of entries.
pub const CLUSTER_RECEIVE_WINDOW_BYTES: u32 = 16 << 20;
/// Time a node has to prove it knows the cluster secret on a new node-to-node connection.
pub const CLUSTER_HANDSHAKE_TIMEOUT_MS: u64 = 5_000;
/// A node-to-node connection that hears nothing for this long is dead (a killed or cut-off
/// peer); the next message dials again. Keep-alives go at a third of it.
pub const CLUSTER_IDLE_TIMEOUT_MS: u64 = 3_000;
/// A Raft group snapshots its state after this many entries, and then drops its log up to
/// it (a node that is further behind catches up from the snapshot).
pub const CLUSTER_SNAPSHOT_EVERY_ENTRIES: u64 = 10_000;
/// How long a cluster write waits for a majority to confirm it before the client hears
/// `unavailable` (a leader cut off from the others waits for ever otherwise).
pub const CLUSTER_WRITE_TIMEOUT_MS: u64 = 5_000;
/// What a member that forwards a SQL request to the leader waits beyond
/// `CLUSTER_WRITE_TIMEOUT_MS` (dialing, the request's reads, the way back) before the client
/// hears `unavailable`.
pub const CLUSTER_FORWARD_MARGIN_MS: u64 = 3_000;
/// How long adding a member waits for the new node to hold every entry up to its addition
/// (it may need a snapshot); past it the node stays a learner that keeps catching up, and the
/// request, sent again, makes it a voter.
pub const CLUSTER_MEMBER_CATCH_UP_WAIT_MS: u64 = 30_000;
/// How long one step of a membership change waits for a majority to commit it before the
/// administrator hears `unavailable` (the change may still take effect).
pub const CLUSTER_MEMBERSHIP_COMMIT_WAIT_MS: u64 = 10_000;
/// Raft heartbeats from a leader to its followers; a follower that hears none for an election
/// timeout (below) stands for election.
pub const CLUSTER_HEARTBEAT_MS: u64 = 150;
/// Shortest election timeout; each node picks its own in this range at random, so elections
/// rarely split.
pub const CLUSTER_ELECTION_TIMEOUT_MS_MIN: u64 = 600;
/// Longest election timeout.
pub const CLUSTER_ELECTION_TIMEOUT_MS_MAX: u64 = 1_200;

/// Data groups of a cluster: table and topic partitions are spread over this many Raft
/// groups by a stable hash of their ids (`cluster/groups.rs`), however many users and topics
/// there are. Every member of a cluster must share it: changing it moves partitions to other
/// groups, so it needs a new cluster.
pub const CLUSTER_DATA_GROUPS: u32 = 3;
/// How often a data group's leader proposes a tick (`cluster/ticks.rs`): a join or a time
/// window on a cluster sees a write once every group ticked after it, so this bounds their
/// added latency; each tick is one small Raft entry per group.
pub const CLUSTER_TICK_INTERVAL_MS: u64 = 100;
/// How often a node steers its data groups' elections towards the meta group's leader
/// (`cluster/placement.rs`).
pub const CLUSTER_PLACEMENT_CHECK_MS: u64 = 100;
/// How long, since its leader last changed, a data group may be led by another node than the
/// meta group's leader before every member may stand for it (the meta leader's candidacy failed, e.g. its
/// copy of the group lags). Well above the meta leader's own path to a candidacy after the
/// group's leader steps aside: openraft waits a leader lease (the longest election timeout)
/// plus an election timeout after the last heartbeat, and twice the longest election timeout
/// more if it saw a longer log, so up to 4.8 s. A shorter wait (3 s) let other members win
/// first and hand over again, over and over (found by the 1,000-round fault schedule).
pub const CLUSTER_PLACEMENT_FALLBACK_MS: u64 = 10_000;
/// What a member that forwards a membership change to the leader waits for its answer: as
/// long as the leader may take (in each group, adding the learner, its catch-up, and making
/// it a voter), plus `CLUSTER_FORWARD_MARGIN_MS`.
pub const CLUSTER_MEMBERSHIP_FORWARD_WAIT_MS: u64 = (1 + CLUSTER_DATA_GROUPS as u64)
    * (CLUSTER_MEMBER_CATCH_UP_WAIT_MS + 2 * CLUSTER_MEMBERSHIP_COMMIT_WAIT_MS)
    + CLUSTER_FORWARD_MARGIN_MS;
