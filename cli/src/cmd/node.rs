//! `9ten node run|status|stop`, and the running node every other node command talks to: the
//! one behind `control.json`, or, when none runs, one started for the length of the command.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use nineten_node::config::{DataDir, Settings};
use nineten_node::control::{self, Client};
use nineten_node::daemon::{self, Node};

use nineten_node::net::subscribe::Policy;
use nineten_protocol::node_record::NodeName;

use crate::cli::{NodeRunArgs, PolicyArg};

/// The node's settings: config file, then flags.
fn config(data_dir: &DataDir, args: Option<&NodeRunArgs>) -> Result<daemon::Config> {
    let settings = Settings::load(&Settings::default_path())?;
    let mut config = daemon::Config::new(data_dir.clone());
    let listen = args.and_then(|a| a.listen.clone()).or(settings.listen);
    if let Some(listen) = listen {
        config.listen = listen
            .parse()
            .with_context(|| format!("listen address {listen:?} is not a multiaddr"))?;
    }
    if let Some(iroh) = args.and_then(|a| a.iroh).or(settings.iroh) {
        config.iroh = iroh;
    }
    let flags = args.map(|a| a.peers.clone()).unwrap_or_default();
    for peer in settings.peers.iter().chain(&flags) {
        config.peers.push(
            peer.parse()
                .with_context(|| format!("peer {peer:?} is not a multiaddr"))?,
        );
    }
    if let Some(mb) = args.and_then(|a| a.cache_mb).or(settings.cache_mb) {
        config.cache_limit = mb.saturating_mul(1 << 20);
    }
    if let Some(a) = args.filter(|a| a.operator) {
        let (Some(cluster), Some(name)) = (a.cluster, a.name.clone()) else {
            bail!("--operator needs --cluster and --name");
        };
        config.operator = Some(nineten_node::home::Operator {
            cluster,
            name: NodeName::new(name).context("--name")?,
            policy: match a.policy {
                PolicyArg::Manual => Policy::Manual,
                PolicyArg::Accept => Policy::Accept,
            },
        });
    }
    Ok(config)
}

/// A node to talk to: the running one, or one started here for this command.
pub(crate) struct Session {
    pub(crate) client: Client,
    local: Option<(Arc<Node>, control::Server)>,
}

impl Session {
    /// Connects to the node running on `data_dir`, or starts one in this process.
    pub(crate) async fn open(data_dir: &DataDir) -> Result<Self> {
        if let Some(client) = Client::connect(data_dir).await? {
            return Ok(Self {
                client,
                local: None,
            });
        }
        let node = Node::start(config(data_dir, None)?)
            .await
            .context("starting a node for this command (none is running)")?;
        let server = control::serve(node.clone(), data_dir, 0).await?;
        let client = Client::connect(data_dir)
            .await?
            .context("the node started for this command does not answer")?;
        Ok(Self {
            client,
            local: Some((node, server)),
        })
    }

    /// Connects to the node running on `data_dir`; an error if none runs.
    pub(crate) async fn running(data_dir: &DataDir) -> Result<Client> {
        match Client::connect(data_dir).await? {
            Some(client) => Ok(client),
            None => bail!(
                "no node is running on {} (start one with `9ten node run`)",
                data_dir.path().display()
            ),
        }
    }

    /// Whether the node was started for this command (and stops with it).
    pub(crate) fn is_temporary(&self) -> bool {
        self.local.is_some()
    }

    /// Stops the node if it was started for this command.
    pub(crate) async fn close(self) -> Result<()> {
        if let Some((node, server)) = self.local {
            server.close();
            node.shutdown().await?;
        }
        Ok(())
    }
}

/// Runs `work` against the node running on `data_dir`; an error if none runs.
pub(crate) fn with_running<T>(
    data_dir: &DataDir,
    work: impl AsyncFnOnce(&Client) -> Result<T>,
) -> Result<T> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async { work(&Session::running(data_dir).await?).await })
}

/// Runs `work` against a node (the running one or a temporary one), closing a temporary node
/// afterwards whatever happened.
pub(crate) fn with_node<T>(
    data_dir: &DataDir,
    work: impl AsyncFnOnce(&Session) -> Result<T>,
) -> Result<T> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let session = Session::open(data_dir).await?;
        let result = work(&session).await;
        session.close().await?;
        result
    })
}

pub(crate) fn run(data_dir: &DataDir, args: &NodeRunArgs) -> Result<ExitCode> {
    let config = config(data_dir, Some(args))?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        if Client::connect(data_dir).await?.is_some() {
            bail!("a node is already running on {}", data_dir.path().display());
        }
        let node = Node::start(config).await?;
        let server = control::serve(node.clone(), data_dir, args.control_port).await?;
        let status = node.status().await?;
        println!("node {}", status.node);
        for addr in &status.addrs {
            println!("listening on {addr}");
        }
        for addr in &status.iroh {
            println!("serving tracks on {addr} (iroh)");
        }
        println!("control API on http://{} (token in {}/control.json)", server.addr(), data_dir.path().display());
        println!("{} releases in the catalog; Ctrl-C stops the node", status.releases);
        tokio::select! {
            _ = tokio::signal::ctrl_c() => eprintln!("stopping"),
            () = server.shutdown_requested() => eprintln!("stopping (asked through the control API)"),
        }
        server.close();
        node.shutdown().await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn status(data_dir: &DataDir) -> Result<ExitCode> {
    let status = with_running(data_dir, async |c| Ok(c.status().await?))?;
    println!("node      {}", status.node);
    for addr in &status.addrs {
        println!("libp2p    {addr}");
    }
    for addr in &status.iroh {
        println!("iroh      {addr}");
    }
    println!("peers     {}", status.peers);
    println!("releases  {}", status.releases);
    println!("receipts  {}", status.receipts);
    println!(
        "cache     {} tracks, {:.1} MB",
        status.cached_tracks,
        status.cached_bytes as f64 / 1e6
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn stop(data_dir: &DataDir) -> Result<ExitCode> {
    with_running(data_dir, async |c| Ok(c.shutdown().await?))?;
    println!("the node is stopping");
    Ok(ExitCode::SUCCESS)
}

/// `9ten nodes`: the directory as the node knows it, one node record per line (JSON).
pub(crate) fn nodes(data_dir: &DataDir) -> Result<ExitCode> {
    let nodes = with_node(data_dir, async |s| Ok(s.client.nodes().await?))?;
    if nodes.is_empty() {
        eprintln!("no node records known yet (a running node learns them from its peers)");
    }
    for n in nodes {
        println!("{n}");
    }
    Ok(ExitCode::SUCCESS)
}
