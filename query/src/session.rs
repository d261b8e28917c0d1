//! The DataFusion session over the event log, configured explicitly (memory
//! pool, partitions, Parquet filter pushdown), and the read-only SQL entry
//! point.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
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

use crate::staged::{Snapshot, events_with_date_schema, read_staged};
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
///
/// It sees the log as of when it was opened: sealed files plus staged rows.
/// It holds the staging lock shared until its first query is planned (the
/// moment the sealed files are listed), so that a concurrent seal is seen
/// either wholly or not at all.
pub struct ReadOnlySession {
    context: SessionContext,
    limits: QueryLimits,
    snapshot: std::sync::Mutex<Option<Snapshot>>,
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
        let snapshot = Snapshot::take(root)?;
        for table in Table::ALL {
            register(&context, root, table).await?;
        }
        register_current_findings(&context).await?;
        Ok(ReadOnlySession {
            context,
            limits,
            snapshot: std::sync::Mutex::new(Some(snapshot)),
        })
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
        self.execute(frame).await
    }

    /// Plans and starts `frame` (built on this session's tables) within the
    /// time limit, then lets go of the snapshot lock: from here on the
    /// query reads the files it listed, whatever a seal does.
    pub async fn execute(&self, frame: DataFrame) -> Result<SendableRecordBatchStream, QueryError> {
        let result = tokio::time::timeout(self.limits.timeout, frame.execute_stream())
            .await
            .map_err(|_| QueryError::Timeout(self.limits.timeout))
            .and_then(|r| r.map_err(QueryError::from));
        self.release_snapshot();
        result
    }

    /// Lets a concurrent seal publish; later queries of this session may
    /// see it half done, so open a new session per query.
    pub fn release_snapshot(&self) {
        self.snapshot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
    }

    /// The per-query time limit.
    pub fn timeout(&self) -> Duration {
        self.limits.timeout
    }
}

/// The SQL name a table's files are registered under: `findings` holds
/// every version of every finding, so its files are `finding_versions` and
/// `findings` is the view of each finding's newest version.
fn registered_name(table: Table) -> &'static str {
    match table {
        Table::Findings => "finding_versions",
        other => other.name(),
    }
}

/// `findings`: the newest version of each finding (the one detected last;
/// of two detected at once, the one with more evidence).
async fn register_current_findings(context: &SessionContext) -> Result<(), QueryError> {
    let columns = Table::Findings
        .schema()
        .fields()
        .iter()
        .map(|f| format!("\"{}\"", f.name()))
        .collect::<Vec<_>>()
        .join(", ");
    let newest = context
        .sql(&format!(
            "SELECT {columns} FROM (SELECT *, row_number() OVER (PARTITION BY finding_id \
             ORDER BY detected_at DESC, count DESC, version_id) AS version_rank \
             FROM finding_versions) WHERE version_rank = 1"
        ))
        .await?;
    context.register_table("findings", newest.into_view())?;
    Ok(())
}

async fn register(context: &SessionContext, root: &Path, table: Table) -> Result<(), QueryError> {
    let name = registered_name(table);
    let dir = root.join(table.name());
    let schema = table.schema();
    let staged = match table {
        Table::Events => read_staged(root)?,
        Table::DeadLetters | Table::Findings => Vec::new(),
    };
    if !dir.is_dir() {
        let provider = if staged.is_empty() {
            MemTable::try_new(schema, vec![vec![]])?
        } else {
            MemTable::try_new(events_with_date_schema(), vec![staged])?
        };
        context.register_table(name, Arc::new(provider))?;
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
    if staged.is_empty() {
        context.register_table(name, Arc::new(provider))?;
        return Ok(());
    }
    // Sealed files and staged rows, as one table.
    let staged_schema = provider.schema();
    let staged = MemTable::try_new(staged_schema, vec![staged])?;
    let union = context
        .read_table(Arc::new(provider))?
        .union(context.read_table(Arc::new(staged))?)?;
    context.register_table(name, union.into_view())?;
    Ok(())
}
