//! `authtrail serve` (the HTTP API over the event log) and `authtrail
//! token` (tokens signed by the local key).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Toml};

use authtrail_api::auth::local::LocalKey;
use authtrail_api::{ApiConfig, AppState};
use authtrail_ingest::adapters::AdapterOptions;
use authtrail_ingest::staging::Stager;
use authtrail_ingest::store::{EventLog, LogOptions};

use crate::cli::{ServeArgs, TokenArgs};

/// Sections of the configuration file that `AUTHTRAIL_<SECTION>__<KEY>`
/// variables may set (other `AUTHTRAIL_*` variables are the flags').
const SECTIONS: &[&str] = &["server", "auth", "webhook", "query", "staging"];

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
    figment
        .merge(env)
        .extract::<ApiConfig>()
        .map_err(|err| anyhow::anyhow!("invalid configuration: {err}"))
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = load_config(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    let data = args.data.data.clone();
    let mut adapter_options = AdapterOptions {
        syslog_year: args.syslog_year,
        ..AdapterOptions::default()
    };
    if let Some(path) = &args.mapping {
        adapter_options.generic_mapping = Some(super::load_mapping(path)?);
    }
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
        let state = Arc::new(
            AppState::new(data.clone(), config, Arc::clone(&stager), &adapter_options).await?,
        );
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
        eprintln!("shutting down: sealing staged events");
        tokio::task::spawn_blocking(move || stager.shutdown())
            .await
            .context("stopping the event log writer")??;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
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
