//! `authtrail serve` (the HTTP API over the event log) and `authtrail
//! token` (tokens signed by the local key).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Toml};

use authtrail_api::auth::local::LocalKey;
use authtrail_api::{ApiConfig, AppState};
use authtrail_ingest::adapters::AdapterOptions;
use authtrail_ingest::kafka::{self, KafkaReport, KafkaSettings, KafkaStats};
use authtrail_ingest::staging::Stager;
use authtrail_ingest::store::{EventLog, LogOptions};

use crate::cli::{ServeArgs, TokenArgs};

/// Sections of the configuration file that `AUTHTRAIL_<SECTION>__<KEY>`
/// variables may set (other `AUTHTRAIL_*` variables are the flags').
const SECTIONS: &[&str] = &["server", "auth", "webhook", "query", "staging", "kafka"];

/// The configuration: the file (if any), then environment variables.
fn load_config(path: Option<&Path>) -> anyhow::Result<ApiConfig> {
    let mut figment = Figment::new();
    if let Some(path) = path {
        if !path.is_file() {
            bail!(
                "configuration file {} not found (see examples/authtrail.toml)",
                path.display()
            );
        }
        figment = figment.merge(Toml::file(path));
    }
    let env = Env::prefixed("AUTHTRAIL_").split("__").filter(|key| {
        let key = key.as_str().to_ascii_lowercase();
        SECTIONS
            .iter()
            .any(|s| key.len() > s.len() && key.starts_with(s) && key[s.len()..].starts_with('.'))
    });
    // The Kafka consumer's variables are the same as `ingest kafka`'s:
    // AUTHTRAIL_KAFKA_BROKERS, AUTHTRAIL_KAFKA_GROUP, AUTHTRAIL_KAFKA_TOPICS.
    let kafka_env = Env::prefixed("AUTHTRAIL_KAFKA_")
        .filter(|key| {
            ["brokers", "group", "topics"].contains(&key.as_str().to_ascii_lowercase().as_str())
        })
        .map(|key| format!("kafka.{}", key.as_str().to_ascii_lowercase()).into());
    figment
        .merge(env)
        .merge(kafka_env)
        .extract::<ApiConfig>()
        .map_err(|err| anyhow::anyhow!("invalid configuration: {err}"))
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = load_config(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(brokers) = args.kafka_brokers {
        config.kafka.brokers = Some(brokers);
    }
    if !args.kafka_topics.is_empty() {
        config.kafka.topics = authtrail_api::config::TopicList::Many(args.kafka_topics);
    }
    if let Some(group) = args.kafka_group {
        config.kafka.group = group;
    }
    let data = args.data.data.clone();
    let adapter_options = super::adapter_options(args.syslog_year, args.mapping.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("authtrail-http")
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let log = EventLog::open(&data, LogOptions::default())?;
        let options = config.staging.options();
        let stager = tokio::task::spawn_blocking(move || Stager::start(log, options))
            .await
            .context("starting the event log writer")??;
        let stager = Arc::new(stager);
        let listen = config.server.listen;
        let kafka = config
            .kafka
            .settings()
            .map_err(|err| anyhow::anyhow!("invalid [kafka] configuration: {err}"))?;
        let mut state =
            AppState::new(data.clone(), config, Arc::clone(&stager), &adapter_options).await?;
        let consumer = match kafka {
            Some(settings) => {
                let stats = Arc::new(KafkaStats::default());
                state.metrics.register_kafka(Arc::clone(&stats));
                Some(start_consumer(
                    settings,
                    Arc::clone(&stager),
                    adapter_options.clone(),
                    stats,
                )?)
            }
            None => None,
        };
        let state = Arc::new(state);
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen} (is another server using it?)"))?;
        let address = listener.local_addr().context("reading the bound address")?;
        #[allow(clippy::print_stdout)]
        {
            println!(
                "authtrail listening on http://{address} (event log: {})",
                data.display()
            );
        }
        authtrail_api::serve(listener, state, shutdown_signal())
            .await
            .context("serving HTTP")?;
        if let Some((stop, thread)) = consumer {
            eprintln!("shutting down: storing and committing what the Kafka consumer read");
            stop.store(true, Ordering::Release);
            match tokio::task::spawn_blocking(move || thread.join()).await {
                Ok(Ok(Ok(report))) => tracing::info!(?report, "kafka consumer stopped"),
                Ok(Ok(Err(err))) => tracing::error!(error = %err, "kafka consumer failed"),
                _ => tracing::error!("kafka consumer thread panicked"),
            }
        }
        eprintln!("shutting down: sealing staged events");
        tokio::task::spawn_blocking(move || stager.shutdown())
            .await
            .context("stopping the event log writer")??;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

type Consumer = (
    Arc<AtomicBool>,
    std::thread::JoinHandle<Result<KafkaReport, authtrail_ingest::IngestError>>,
);

/// Runs the Kafka consumer on its own thread until the returned flag is
/// set. A consumer that fails (its writer failed) leaves the API running,
/// its error logged and its lag growing in /metrics.
fn start_consumer(
    settings: KafkaSettings,
    stager: Arc<Stager>,
    adapter_options: AdapterOptions,
    stats: Arc<KafkaStats>,
) -> anyhow::Result<Consumer> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let topics: Vec<String> = settings
        .topics
        .iter()
        .map(|t| format!("{}={}", t.topic, t.source))
        .collect();
    tracing::info!(brokers = %settings.brokers, group = %settings.group, topics = ?topics, "starting the kafka consumer");
    let thread = std::thread::Builder::new()
        .name("authtrail-kafka".into())
        .spawn(move || {
            let result = kafka::run(&settings, stager, &adapter_options, &flag, stats);
            if let Err(err) = &result {
                tracing::error!(error = %err, "the kafka consumer stopped");
            }
            result
        })
        .context("starting the kafka consumer")?;
    Ok((stop, thread))
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot watch SIGTERM; stop with Ctrl-C");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

pub fn token(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(args.config.as_deref())?;
    if let Some(issuer) = &config.auth.issuer {
        bail!(
            "this configuration trusts tokens from {issuer}: get a token from that identity provider \
             (authtrail token only serves servers without an issuer)"
        );
    }
    let known: Vec<String> = if config.auth.roles.is_empty() {
        authtrail_api::auth::Permission::ALL
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect()
    } else {
        config.auth.roles.keys().cloned().collect()
    };
    for role in &args.roles {
        if !known.contains(role) {
            bail!("unknown role {role:?}; roles: {}", known.join(", "));
        }
    }
    let key = LocalKey::load_or_create(&args.data.data)?;
    let token = key.mint(
        &args.subject,
        &config.auth.audience,
        &config.auth.roles_claim,
        &args.roles,
        args.ttl.into(),
    )?;
    #[allow(clippy::print_stdout)]
    {
        println!("{token}");
    }
    Ok(ExitCode::SUCCESS)
}
