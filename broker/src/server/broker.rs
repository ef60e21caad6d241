//! [`Broker`]: the composition root's parts. One of each, opened once over one store, then
//! handed to the listeners as the concrete services they use: HTTP and WebSocket get the SQL
//! engine, QUIC gets topics, groups and the engine ([`Broker::quic_handlers`]).

use std::sync::Arc;

use strand_log::Store;

use crate::catalog::Catalog;
use crate::config::{GroupLimits, MaintenanceConfig};
use crate::engine::{Engine, EngineError, EngineParts};
use crate::metrics::Metrics;
use crate::quic::{QuicHandlers, QuicParts};
use crate::realtime::Realtime;
use crate::tables::TableData;
use crate::topics::{GroupOffsets, TopicData, TopicSeriesSource};
use crate::users::UserDirectory;

/// Everything the server serves from, each part built once here.
pub struct Broker {
    /// Namespaces, tables and topics, as the catalog partition says.
    pub catalog: Arc<Catalog>,
    /// Users, their roles and grants; credentials are checked against it.
    pub users: Arc<UserDirectory>,
    /// The rows of all tables: the open keyed partitions.
    pub tables: Arc<TableData>,
    /// The messages of all topics: one instance per store, so idempotent producers are
    /// tracked in one place.
    pub topics: Arc<TopicData>,
    /// Live subscriptions: the feeds the engine tells of each commit, and their dispatcher.
    pub realtime: Arc<Realtime>,
    /// Consumer groups' committed offsets, served over QUIC.
    pub offsets: Arc<GroupOffsets>,
    /// The counters `GET /metrics` renders.
    pub metrics: Arc<Metrics>,
    /// The SQL engine over the parts above; HTTP, WebSocket and QUIC run statements through it.
    pub engine: Arc<Engine>,
}

impl Broker {
    /// Opens the catalog and the group offsets from `store` (replaying their partitions) and
    /// starts the realtime dispatcher and the engine over them. `clustered`: a cluster
    /// member, whose table writes wait for the cluster's writer.
    pub fn open(
        store: Arc<Store>,
        users: Arc<UserDirectory>,
        metrics: Arc<Metrics>,
        maintenance: MaintenanceConfig,
        clustered: bool,
    ) -> Result<Broker, EngineError> {
        let catalog = Arc::new(Catalog::open(&store)?);
        let topics = Arc::new(TopicData::new(store.clone()));
        let offsets = Arc::new(GroupOffsets::open(&store)?);
        let tables = Arc::new(match clustered {
            true => TableData::clustered(store.clone()),
            false => TableData::new(store.clone()),
        });
        let realtime = Realtime::start(metrics.clone());
        let series = TopicSeriesSource::new(catalog.clone(), topics.clone(), offsets.clone());
        metrics.show_topics(Arc::new(series));
        let engine = Engine::start(EngineParts {
            store,
            catalog: catalog.clone(),
            tables: tables.clone(),
            topics: topics.clone(),
            users: users.clone(),
            realtime: realtime.clone(),
            metrics: metrics.clone(),
            maintenance,
        })?;
        Ok(Broker {
            catalog,
            users,
            tables,
            topics,
            realtime,
            offsets,
            metrics,
            engine: Arc::new(engine),
        })
    }

    /// The QUIC listener's handlers over this broker's parts.
    pub fn quic_handlers(&self, group_limits: GroupLimits) -> QuicHandlers {
        QuicHandlers::new(QuicParts {
            catalog: self.catalog.clone(),
            topics: self.topics.clone(),
            users: self.users.clone(),
            offsets: self.offsets.clone(),
            engine: self.engine.clone(),
            metrics: self.metrics.clone(),
            group_limits,
        })
    }
}
