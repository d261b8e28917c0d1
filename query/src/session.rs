//! The DataFusion session over the event log, configured explicitly (memory
//! pool, partitions, Parquet filter pushdown), and the read-only SQL entry
//! point.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::datatypes::DataType;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{DataFrame, SQLOptions, SessionConfig, SessionContext};

use authtrail_schemas::Table;
use authtrail_schemas::layout::{FILE_EXTENSION, PARTITION_COLUMN};

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The statement is not a read-only query.
    #[error("only read-only queries are allowed: {0}")]
    NotReadOnly(String),
    /// The query is invalid or failed while running.
    #[error("{0}")]
    DataFusion(#[from] DataFusionError),
    /// The query ran longer than its limit.
    #[error("query cancelled after {0:?} (its time limit)")]
    Timeout(Duration),
    /// Encoding a result failed.
    #[error("{0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// The event log directory cannot be used.
    #[error("cannot read the event log at {path}: {message}")]
    Store {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Resource limits of a session.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    /// Memory for joins, sorts and aggregations before they spill or fail.
    pub memory_bytes: usize,
    /// Wall-clock limit of one query.
    pub timeout: Duration,
    /// Parallelism (defaults to the number of cores).
    pub target_partitions: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            memory_bytes: 1 << 30,
            timeout: Duration::from_secs(300),
            target_partitions: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// A session that can only read the event log.
pub struct ReadOnlySession {
    context: SessionContext,
    limits: QueryLimits,
}

/// The statement kinds a read-only session refuses: DDL (CREATE, DROP…),
/// DML (INSERT, COPY…) and statements (SET, transactions, PREPARE).
fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

impl ReadOnlySession {
    /// A session over the log at `root` with tables `events` and
    /// `dead_letters`. A log with no files yet has empty tables.
    pub async fn open(root: &Path, limits: QueryLimits) -> Result<Self, QueryError> {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(limits.memory_bytes)))
            .build_arc()?;
        let mut config = SessionConfig::new()
            .with_target_partitions(limits.target_partitions.max(1))
            .with_information_schema(true);
        let parquet = &mut config.options_mut().execution.parquet;
        parquet.pushdown_filters = true;
        parquet.reorder_filters = true;
        let context = SessionContext::new_with_config_rt(config, runtime);
        for table in Table::ALL {
            register(&context, root, table).await?;
        }
        Ok(ReadOnlySession { context, limits })
    }

    /// The DataFusion context, for callers that build plans themselves.
    pub fn context(&self) -> &SessionContext {
        &self.context
    }

    /// Plans `sql`, refusing anything but a read-only query.
    pub async fn plan(&self, sql: &str) -> Result<DataFrame, QueryError> {
        self.context
            .sql_with_options(sql, read_only())
            .await
            .map_err(|err| match err {
                DataFusionError::Plan(message)
                    if message.contains("not supported") || message.contains("allowed") =>
                {
                    QueryError::NotReadOnly(message)
                }
                other => QueryError::DataFusion(other),
            })
    }

    /// Runs `sql` and returns its result as a stream. The plan is checked
    /// against the time limit while it is being set up; the caller reading
    /// the stream should apply [`ReadOnlySession::timeout`] too.
    pub async fn stream(&self, sql: &str) -> Result<SendableRecordBatchStream, QueryError> {
        let frame = self.plan(sql).await?;
        tokio::time::timeout(self.limits.timeout, frame.execute_stream())
            .await
            .map_err(|_| QueryError::Timeout(self.limits.timeout))?
            .map_err(QueryError::from)
    }

    /// The per-query time limit.
    pub fn timeout(&self) -> Duration {
        self.limits.timeout
    }
}

async fn register(context: &SessionContext, root: &Path, table: Table) -> Result<(), QueryError> {
    let dir = root.join(table.name());
    let schema = table.schema();
    if !dir.is_dir() {
        let empty = MemTable::try_new(schema, vec![vec![]])?;
        context.register_table(table.name(), Arc::new(empty))?;
        return Ok(());
    }
    let absolute = std::path::absolute(&dir).map_err(|err| QueryError::Store {
        path: dir.clone(),
        message: err.to_string(),
    })?;
    let url = ListingTableUrl::parse(format!("{}/", absolute.display()))?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(format!(".{FILE_EXTENSION}"))
        .with_table_partition_cols(vec![(PARTITION_COLUMN.to_owned(), DataType::Date32)]);
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(schema);
    let provider = ListingTable::try_new(config)?;
    context.register_table(table.name(), Arc::new(provider))?;
    Ok(())
}
