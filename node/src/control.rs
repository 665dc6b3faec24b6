//! The control API: how `9ten` commands talk to a running node. HTTP/1.1 with JSON on
//! 127.0.0.1 only, every request carrying `Authorization: Bearer <token>`. The node writes its
//! address, its node key and a fresh random token to `control.json` in its data directory
//! (mode 0600, so only the user who runs it can read it) and removes the file when it stops.
//!
//! A `control.json` left behind by a node that died may point at a port another program
//! listens on now, so a client sends the token only to a node that has proved it knows it:
//! first `GET /v1/hello?nonce=HEX` (no token), answered with the node key and
//! `proof = BLAKE3-keyed(key = BLAKE3(token), "9ten/control/hello/v1" ‖ nonce ‖ node key)`.
//! A wrong or missing proof, or another node key, marks the file stale: no node runs there.
//!
//! | method | path | body → answer |
//! |---|---|---|
//! | GET | `/v1/hello?nonce=HEX` | (no token) → `{"node","proof"}` |
//! | GET | `/v1/status` | → [`Status`] |
//! | GET | `/v1/catalog` | → [`CatalogEntry`]s |
//! | GET | `/v1/search?q=TEXT` | → [`CatalogEntry`]s |
//! | POST | `/v1/releases` | a release upload (below) → [`CatalogEntry`] |
//! | POST | `/v1/publish` | `{"release"}` → [`CatalogEntry`] |
//! | POST | `/v1/play` | `{"track","from_ms","sink"}` → `{"session"}` |
//! | GET | `/v1/listens/{session}` | → [`Listen`], once it has ended |
//! | POST | `/v1/stop` | → [`Listen`] or `null` |
//! | POST | `/v1/seek` | `{"to_ms"}` → `{"session"}` |
//! | POST | `/v1/export` | `{"track","path"}` → `{"title","bytes"}` |
//! | GET | `/v1/receipts/{listener}` | → receipts (JSON objects), found through the DHT |
//! | GET | `/v1/nodes` | → node records (JSON forms): the directory as this node knows it |
//! | POST | `/v1/subscribe` | `{"home","payment_ref"}` → [`Subscribed`] |
//! | POST | `/v1/subscribe` with `"auto_renew":true` | keeps a standing order too |
//! | GET | `/v1/subscriptions` | → [`Subscriptions`] |
//! | POST | `/v1/subscriptions/cancel` | ends the standing order → [`Cancelled`] |
//! | POST | `/v1/subscriptions/{id}/approve` or `/reject` | → [`Subscribed`] |
//! | GET | `/v1/months/{month}` | → every home node's month [`crate::review::Status`] |
//! | GET | `/v1/months/{month}/export/{home}` | → [`MonthExport`] |
//! | GET | `/v1/months/{month}/mine` | → this listener's month, checked ([`crate::review::mine::Mine`]) |
//! | GET | `/v1/days/{day}` | → this home node's [`DayReport`] |
//! | GET | `/v1/earnings/{artist}` | → [`crate::review::earnings::Earning`]s |
//! | GET | `/v1/disputes`, `/v1/disputes/{id}` | → disputes, one with its evidence |
//! | POST | `/v1/disputes/{id}/exclude` or `/keep` | the arbiter operator's verdict |
//! | POST | `/v1/shutdown` | → `{}`; the node stops |
//!
//! Errors answer 4xx or 5xx with `{"error": "…"}`. A release upload is binary: the manifest's
//! binary form prefixed by its length (u32, big-endian), then for each track its Ogg Opus
//! stream and its seek index, each prefixed by its length (u64, big-endian).

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::manifest::SignedManifest;
use nineten_protocol::month::Month;
use nineten_storage::renewal::StandingOrder;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::Error;
use crate::config::DataDir;
use crate::daemon::{CatalogEntry, Listen, Node, SinkSpec, Status};
use crate::import::{PreparedRelease, PreparedTrack};

/// Largest release upload accepted.
pub const MAX_UPLOAD: usize = 4 << 30;

/// Why a control API call failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ControlError {
    /// A file could not be read or written, or the API could not bind its port.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// `control.json` does not parse.
    #[error("{} is not a control file", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// Nothing answers at the address.
    #[error("cannot reach the node at {addr}")]
    Unreachable {
        /// Where it was looked for.
        addr: String,
        /// Why.
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// What answers there is not the node `control.json` names (the file is stale).
    #[error("what answers at {addr} is not the node {node}: {reason}")]
    Impostor {
        /// Where.
        addr: String,
        /// The node the file names.
        node: PublicKey,
        /// What gave it away.
        reason: String,
    },
    /// A request could not be built.
    #[error("building a request")]
    Request(#[source] axum::http::Error),
    /// The answer could not be read.
    #[error("reading the node's answer")]
    Reading(#[source] hyper::Error),
    /// The answer is not the JSON expected.
    #[error("the node's answer does not parse")]
    Malformed(#[source] serde_json::Error),
    /// The node answered with an error.
    #[error("{message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The node's message.
        message: String,
    },
}

/// What `control.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ControlFile {
    /// Where the API listens.
    pub addr: SocketAddr,
    /// The bearer token.
    pub token: String,
    /// The node's key.
    pub node: PublicKey,
}

/// The proof that whoever answers knows `token` (see the module docs).
fn hello_proof(token: &str, nonce: &[u8; 32], node: &PublicKey) -> String {
    let key = blake3::hash(token.as_bytes());
    let mut message = b"9ten/control/hello/v1".to_vec();
    message.extend_from_slice(nonce);
    message.extend_from_slice(&node.0);
    blake3::keyed_hash(key.as_bytes(), &message)
        .to_hex()
        .to_string()
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[derive(Debug, Deserialize)]
struct HelloQuery {
    nonce: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct HelloReply {
    node: PublicKey,
    proof: String,
}

fn control_path(dir: &DataDir) -> PathBuf {
    dir.path().join("control.json")
}

/// A play request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlayRequest {
    /// The track's hash or the start of it.
    pub track: String,
    /// Where to start, in the track.
    #[serde(default)]
    pub from_ms: u64,
    /// Where the audio goes.
    pub sink: SinkSpec,
}

#[derive(Debug, Serialize, Deserialize)]
struct SessionReply {
    session: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct PublishRequest {
    release: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct ExportRequest {
    track: String,
    path: PathBuf,
}

/// What an export wrote.
#[derive(Debug, Serialize, Deserialize)]
pub struct Exported {
    /// The track's title.
    pub title: String,
    /// Bytes written.
    pub bytes: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct SeekRequest {
    to_ms: u64,
}

#[derive(Debug, Deserialize)]
struct SearchQuery {
    q: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct ErrorReply {
    error: String,
}

/// An API error: a status and a message.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorReply { error: self.1 })).into_response()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::UnknownTrack(_)
            | Error::UnknownRelease(_)
            | Error::UnknownSession(_)
            | Error::NothingPlaying
            | Error::UnknownRequest(_) => StatusCode::NOT_FOUND,
            Error::AmbiguousTrack(_)
            | Error::AmbiguousRelease(_)
            | Error::ContestedTrack { .. }
            | Error::Manifest(_)
            | Error::Damaged { .. } => StatusCode::BAD_REQUEST,
            Error::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Error::NoProviders(_) | Error::TooLarge { .. } => StatusCode::BAD_GATEWAY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self(status, e.to_string())
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

#[derive(Clone)]
struct Api {
    node: Arc<Node>,
    token: Arc<str>,
    stop: watch::Sender<bool>,
}

/// A running control API.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    file: PathBuf,
    stopped: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
}

impl Server {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until a client asks the node to shut down.
    pub async fn shutdown_requested(&self) {
        let mut stopped = self.stopped.clone();
        let _ = stopped.wait_for(|s| *s).await;
    }

    /// Stops serving and removes `control.json`.
    pub fn close(self) {
        let _ = self.stop.send(true);
        if let Err(e) = fs::remove_file(&self.file) {
            warn!("could not remove {}: {e}", self.file.display());
        }
    }
}

/// Serves the control API for `node` on 127.0.0.1 (port `port`, 0 for any) and writes
/// `control.json` into `dir`.
pub async fn serve(node: Arc<Node>, dir: &DataDir, port: u16) -> Result<Server, Error> {
    let io = |what: &str, source: std::io::Error| ControlError::Io {
        what: what.to_string(),
        source,
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .map_err(|e| io("binding the control API", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| io("binding the control API", e))?;
    let token: String = rand::random::<[u8; 32]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let file = control_path(dir);
    let control = ControlFile {
        addr,
        token: token.clone(),
        node: node.key(),
    };
    let json = serde_json::to_vec(&control).expect("a control file always serializes");
    write_private(&file, &json).map_err(|e| io(&format!("writing {}", file.display()), e))?;

    let (stop, stopped) = watch::channel(false);
    let api = Api {
        node,
        token: token.into(),
        stop: stop.clone(),
    };
    let app = Router::new()
        .route("/v1/status", get(status))
        .route("/v1/catalog", get(catalog))
        .route("/v1/search", get(search))
        .route("/v1/releases", post(add_release))
        .route("/v1/publish", post(publish))
        .route("/v1/play", post(play))
        .route("/v1/listens/{session}", get(listen))
        .route("/v1/stop", post(stop_playing))
        .route("/v1/seek", post(seek))
        .route("/v1/export", post(export))
        .route("/v1/receipts/{listener}", get(receipts))
        .route("/v1/nodes", get(nodes))
        .route("/v1/subscribe", post(subscribe))
        .route("/v1/subscriptions", get(subscriptions))
        .route("/v1/subscriptions/cancel", post(cancel_renewal))
        .route("/v1/subscriptions/{id}/{decision}", post(decide))
        .route("/v1/months/{month}", get(month_status))
        .route("/v1/months/{month}/export/{home}", get(month_export))
        .route("/v1/months/{month}/mine", get(month_mine))
        .route("/v1/days/{day}", get(day_report))
        .route("/v1/earnings/{artist}", get(earnings))
        .route("/v1/disputes", get(disputes))
        .route("/v1/disputes/{id}", get(dispute))
        .route("/v1/disputes/{id}/{decision}", post(decide_dispute))
        .route("/v1/shutdown", post(shutdown))
        .layer(DefaultBodyLimit::max(MAX_UPLOAD))
        .layer(middleware::from_fn_with_state(api.clone(), authorize))
        // The one route without the token: it proves the node knows it.
        .route("/v1/hello", get(hello))
        .with_state(api);
    let mut until = stopped.clone();
    tokio::spawn(async move {
        let serving = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = until.wait_for(|s| *s).await;
        });
        if let Err(e) = serving.await {
            warn!("the control API failed: {e}");
        }
    });
    info!(%addr, "control API listening");
    Ok(Server {
        addr,
        file,
        stopped,
        stop,
    })
}

/// Writes `bytes` to `path`, readable by the owner only (replacing a stale file).
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let _ = fs::remove_file(path);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

async fn authorize(State(api): State<Api>, request: Request, next: Next) -> Response {
    let expected = format!("Bearer {}", api.token);
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    // Compare in constant time: the token is the only thing between a local user and the node.
    let ok = given.is_some_and(|g| {
        g.len() == expected.len()
            && g.bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    });
    if !ok {
        return ApiError(
            StatusCode::UNAUTHORIZED,
            "missing or wrong token (see control.json in the node's data directory)".into(),
        )
        .into_response();
    }
    next.run(request).await
}

async fn hello(State(api): State<Api>, Query(query): Query<HelloQuery>) -> ApiResult<HelloReply> {
    let nonce = hex32(&query.nonce).ok_or_else(|| {
        ApiError(
            StatusCode::BAD_REQUEST,
            "nonce: 64 hex characters".to_string(),
        )
    })?;
    let node = api.node.key();
    Ok(Json(HelloReply {
        node,
        proof: hello_proof(&api.token, &nonce, &node),
    }))
}

async fn status(State(api): State<Api>) -> ApiResult<Status> {
    Ok(Json(api.node.status().await?))
}

async fn catalog(State(api): State<Api>) -> ApiResult<Vec<CatalogEntry>> {
    Ok(Json(api.node.catalog()?))
}

async fn search(
    State(api): State<Api>,
    Query(query): Query<SearchQuery>,
) -> ApiResult<Vec<CatalogEntry>> {
    Ok(Json(api.node.search(&query.q)?))
}

async fn add_release(State(api): State<Api>, body: Bytes) -> ApiResult<CatalogEntry> {
    let release = decode_upload(&body).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
    api.node.add_release(&release).await?;
    Ok(Json(CatalogEntry::from(&release.manifest)))
}

async fn publish(
    State(api): State<Api>,
    Json(request): Json<PublishRequest>,
) -> ApiResult<CatalogEntry> {
    Ok(Json(api.node.publish(&request.release).await?))
}

async fn play(State(api): State<Api>, Json(request): Json<PlayRequest>) -> ApiResult<SessionReply> {
    let session = api
        .node
        .play(&request.track, request.from_ms, request.sink)
        .await?;
    Ok(Json(SessionReply { session }))
}

async fn listen(State(api): State<Api>, Path(session): Path<u64>) -> ApiResult<Listen> {
    Ok(Json(api.node.wait(session).await?))
}

async fn stop_playing(State(api): State<Api>) -> ApiResult<Option<Listen>> {
    Ok(Json(api.node.stop().await))
}

async fn seek(State(api): State<Api>, Json(request): Json<SeekRequest>) -> ApiResult<SessionReply> {
    let session = api.node.seek(request.to_ms).await?;
    Ok(Json(SessionReply { session }))
}

async fn export(State(api): State<Api>, Json(request): Json<ExportRequest>) -> ApiResult<Exported> {
    let (title, bytes) = api.node.export(&request.track, &request.path).await?;
    Ok(Json(Exported { title, bytes }))
}

async fn receipts(
    State(api): State<Api>,
    Path(listener): Path<String>,
) -> ApiResult<Vec<serde_json::Value>> {
    let listener: PublicKey = listener
        .parse()
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("listener: {e}")))?;
    let found = api.node.listener_receipts(listener).await?;
    Ok(Json(
        found
            .iter()
            .filter_map(|r| serde_json::from_str(&r.to_json()).ok())
            .collect(),
    ))
}

/// A record's JSON form as a value.
fn json_of(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("record JSON forms parse")
}

async fn nodes(State(api): State<Api>) -> ApiResult<Vec<serde_json::Value>> {
    Ok(Json(
        api.node
            .nodes()?
            .iter()
            .map(|r| json_of(&r.to_json()))
            .collect(),
    ))
}

/// A request to subscribe this node's listener.
#[derive(Debug, Serialize, Deserialize)]
pub struct SubscribeRequest {
    /// The home node's key.
    pub home: PublicKey,
    /// The payment's reference.
    pub payment_ref: String,
    /// Keep a standing order: renew each month until cancelled.
    #[serde(default)]
    pub auto_renew: bool,
}

/// What became of a subscription request or decision.
#[derive(Debug, Serialize, Deserialize)]
pub struct Subscribed {
    /// `subscribed`, `pending` or `rejected`.
    pub outcome: String,
    /// The subscription's JSON form, when signed.
    pub subscription: Option<serde_json::Value>,
    /// Why it was rejected.
    pub reason: Option<String>,
}

async fn subscribe(
    State(api): State<Api>,
    Json(request): Json<SubscribeRequest>,
) -> ApiResult<Subscribed> {
    use crate::net::subscribe::Outcome;
    let outcome = api
        .node
        .subscribe(request.home, &request.payment_ref, request.auto_renew)
        .await?;
    Ok(Json(match outcome {
        Outcome::Subscribed(s) => Subscribed {
            outcome: "subscribed".into(),
            subscription: Some(json_of(&s.to_json())),
            reason: None,
        },
        Outcome::Pending => Subscribed {
            outcome: "pending".into(),
            subscription: None,
            reason: None,
        },
        Outcome::Rejected(why) => Subscribed {
            outcome: "rejected".into(),
            subscription: None,
            reason: Some(why.0),
        },
    }))
}

/// A node's subscriptions and the requests waiting for its operator.
#[derive(Debug, Serialize, Deserialize)]
pub struct Subscriptions {
    /// JSON forms: this listener's of this and the next month, and those this node signed.
    pub subscriptions: Vec<serde_json::Value>,
    /// Requests waiting for the operator.
    pub pending: Vec<PendingRequest>,
    /// This listener's standing order, if it renews each month.
    pub standing_order: Option<OrderView>,
}

/// A listener's standing order, as the control API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct OrderView {
    /// The home node it renews through.
    pub home: PublicKey,
    /// The standing payment's reference.
    pub payment_ref: String,
}

impl From<StandingOrder> for OrderView {
    fn from(o: StandingOrder) -> Self {
        Self {
            home: o.home,
            payment_ref: o.payment_ref,
        }
    }
}

/// What `POST /v1/subscriptions/cancel` ended.
#[derive(Debug, Serialize, Deserialize)]
pub struct Cancelled {
    /// The standing order ended, if there was one.
    pub cancelled: Option<OrderView>,
}

async fn cancel_renewal(State(api): State<Api>) -> ApiResult<Cancelled> {
    Ok(Json(Cancelled {
        cancelled: api.node.cancel_renewal()?.map(OrderView::from),
    }))
}

/// A request waiting for the operator.
#[derive(Debug, Serialize, Deserialize)]
pub struct PendingRequest {
    /// Its id.
    pub id: ContentHash,
    /// The listener's month key.
    pub listener: PublicKey,
    /// The month.
    pub month: String,
    /// The payment's reference.
    pub payment_ref: String,
    /// Whether it renews a subscription of the month before (its carry then moves).
    pub renewal: bool,
}

async fn subscriptions(State(api): State<Api>) -> ApiResult<Subscriptions> {
    Ok(Json(Subscriptions {
        subscriptions: api
            .node
            .subscriptions()?
            .iter()
            .map(|s| json_of(&s.to_json()))
            .collect(),
        pending: api
            .node
            .pending()?
            .into_iter()
            .map(|p| PendingRequest {
                id: p.id,
                listener: p.request.listener,
                month: p.request.month.to_string(),
                renewal: p.request.renews.is_some(),
                payment_ref: p.request.payment_ref,
            })
            .collect(),
        standing_order: api.node.standing_order()?.map(OrderView::from),
    }))
}

async fn decide(
    State(api): State<Api>,
    Path((id, decision)): Path<(String, String)>,
) -> ApiResult<Subscribed> {
    let approve = match decision.as_str() {
        "approve" => true,
        "reject" => false,
        other => {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("no decision {other:?}: approve or reject"),
            ));
        }
    };
    let signed = api.node.decide(&id, approve).await?;
    Ok(Json(Subscribed {
        outcome: if approve { "subscribed" } else { "rejected" }.into(),
        subscription: signed.map(|s| json_of(&s.to_json())),
        reason: (!approve).then(|| "rejected by the operator".to_string()),
    }))
}

fn month_of(text: &str) -> Result<Month, ApiError> {
    text.parse()
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("month {text:?}: {e}")))
}

async fn month_status(
    State(api): State<Api>,
    Path(month): Path<String>,
) -> ApiResult<Vec<crate::review::Status>> {
    Ok(Json(api.node.month_status(month_of(&month)?)?))
}

/// A month's export: the files of `review.md`'s folder, each name with its text.
#[derive(Debug, Serialize, Deserialize)]
pub struct MonthExport {
    /// `nodes.jsonl`, ..., `tally.json`, in the order review.md lists them.
    pub files: Vec<(String, String)>,
}

async fn month_export(
    State(api): State<Api>,
    Path((month, home)): Path<(String, String)>,
) -> ApiResult<MonthExport> {
    let month = month_of(&month)?;
    let home: PublicKey = home
        .parse()
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("home node: {e}")))?;
    let (records, tally) = api
        .node
        .month_export(home, month)
        .await
        .map_err(|e| match e {
            Error::Review(why) => ApiError(StatusCode::NOT_FOUND, why),
            other => other.into(),
        })?;
    let files = records
        .files(&tally)
        .into_iter()
        .map(|(name, text)| (name.to_string(), text))
        .collect();
    Ok(Json(MonthExport { files }))
}

/// A review error the caller can act on: 404 for what is not there, 409 for what cannot be
/// done now.
fn review_error(e: Error) -> ApiError {
    match e {
        Error::Review(why) if why.contains("no ") || why.contains("not stored") => {
            ApiError(StatusCode::NOT_FOUND, why)
        }
        Error::Review(why) => ApiError(StatusCode::CONFLICT, why),
        other => other.into(),
    }
}

async fn month_mine(
    State(api): State<Api>,
    Path(month): Path<String>,
) -> ApiResult<crate::review::mine::Mine> {
    Ok(Json(api.node.month_mine(month_of(&month)?).await?))
}

async fn earnings(
    State(api): State<Api>,
    Path(artist): Path<String>,
) -> ApiResult<Vec<crate::review::earnings::Earning>> {
    let artist: PublicKey = artist
        .parse()
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("artist key: {e}")))?;
    Ok(Json(api.node.earnings(artist).await?))
}

async fn disputes(State(api): State<Api>) -> ApiResult<Vec<crate::review::DisputeEntry>> {
    Ok(Json(api.node.disputes()?))
}

async fn dispute(
    State(api): State<Api>,
    Path(id): Path<String>,
) -> ApiResult<crate::review::DisputeDetail> {
    Ok(Json(api.node.dispute(&id).await.map_err(review_error)?))
}

async fn decide_dispute(
    State(api): State<Api>,
    Path((id, decision)): Path<(String, String)>,
) -> ApiResult<crate::review::DisputeEntry> {
    let exclude = match decision.as_str() {
        "exclude" => true,
        "keep" => false,
        other => {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("no decision {other:?}: exclude or keep"),
            ));
        }
    };
    Ok(Json(
        api.node
            .decide_dispute(&id, exclude)
            .await
            .map_err(review_error)?,
    ))
}

/// A home node's day: its signed report and the detail only it can open.
#[derive(Debug, Serialize, Deserialize)]
pub struct DayReport {
    /// The signed daily report's JSON form.
    pub report: serde_json::Value,
    /// The detailed day.
    pub detail: crate::review::daily::DayDetail,
}

async fn day_report(State(api): State<Api>, Path(day): Path<String>) -> ApiResult<DayReport> {
    let day: nineten_protocol::daily::Day = day
        .parse()
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("day {day:?}: {e}")))?;
    let (report, detail) = api.node.day(day).map_err(|e| match e {
        Error::Review(why) => ApiError(StatusCode::NOT_FOUND, why),
        other => other.into(),
    })?;
    Ok(Json(DayReport {
        report: json_of(&report.to_json()),
        detail,
    }))
}

async fn shutdown(State(api): State<Api>) -> ApiResult<serde_json::Value> {
    let _ = api.stop.send(true);
    Ok(Json(serde_json::json!({})))
}

/// The upload form of a prepared release (see the module docs).
pub fn encode_upload(release: &PreparedRelease) -> Vec<u8> {
    let manifest = release.manifest.to_bytes();
    let mut out = Vec::with_capacity(
        4 + manifest.len()
            + release
                .tracks
                .iter()
                .map(|t| 16 + t.stream.len() + t.index.len())
                .sum::<usize>(),
    );
    out.extend_from_slice(&(manifest.len() as u32).to_be_bytes());
    out.extend_from_slice(&manifest);
    for t in &release.tracks {
        for blob in [&t.stream, &t.index] {
            out.extend_from_slice(&(blob.len() as u64).to_be_bytes());
            out.extend_from_slice(blob);
        }
    }
    out
}

/// Reads an upload; every length is checked against what is left. The blobs' hashes are
/// checked when the release is stored.
pub fn decode_upload(bytes: &[u8]) -> Result<PreparedRelease, String> {
    fn take<'a>(rest: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], String> {
        if rest.len() < n {
            return Err(format!("the upload ends inside {what}"));
        }
        let (head, tail) = rest.split_at(n);
        *rest = tail;
        Ok(head)
    }
    let mut rest = bytes;
    let len = u32::from_be_bytes(
        take(&mut rest, 4, "the manifest length")?
            .try_into()
            .map_err(|_| "manifest length")?,
    );
    let manifest = SignedManifest::from_bytes(take(&mut rest, len as usize, "the manifest")?)
        .map_err(|e| format!("manifest: {e}"))?;
    let mut tracks = Vec::new();
    for track in &manifest.manifest.tracks {
        let mut blob = |what: &str| -> Result<Vec<u8>, String> {
            let n = u64::from_be_bytes(
                take(&mut rest, 8, what)?
                    .try_into()
                    .map_err(|_| "blob length")?,
            );
            let n = usize::try_from(n).map_err(|_| format!("{what} is too long"))?;
            Ok(take(&mut rest, n, what)?.to_vec())
        };
        let stream = blob(&format!("track {}'s stream", track.number))?;
        let index = blob(&format!("track {}'s seek index", track.number))?;
        if ContentHash::of(&stream) != track.hash {
            return Err(format!(
                "track {}'s stream does not match its hash",
                track.number
            ));
        }
        tracks.push(PreparedTrack {
            track: track.clone(),
            stream,
            index,
        });
    }
    if !rest.is_empty() {
        return Err("bytes after the last track".to_string());
    }
    Ok(PreparedRelease { manifest, tracks })
}

/// A client of a running node's control API.
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    token: String,
    http: HttpClient<HttpConnector, Full<Bytes>>,
}

impl Client {
    /// The node running on `dir`, if one answers there and proves it is the node
    /// `control.json` names (`None` if none runs: no `control.json`, or a stale one, whatever
    /// else may listen on its port now). The token goes out only after the proof.
    pub async fn connect(dir: &DataDir) -> Result<Option<Self>, Error> {
        let path = control_path(dir);
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(ControlError::Io {
                    what: format!("reading {}", path.display()),
                    source,
                }
                .into());
            }
        };
        let file: ControlFile = serde_json::from_slice(&text)
            .map_err(|source| ControlError::BadFile { path, source })?;
        let client = Self {
            base: format!("http://{}", file.addr),
            token: file.token.clone(),
            http: HttpClient::builder(TokioExecutor::new()).build_http(),
        };
        match client.hello(&file).await {
            Ok(()) => Ok(Some(client)),
            Err(e @ (ControlError::Unreachable { .. } | ControlError::Impostor { .. })) => {
                warn!("control.json is stale ({e}); no node runs on this folder");
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Checks that what answers knows the token and is the node the file names, without
    /// sending the token.
    async fn hello(&self, file: &ControlFile) -> Result<(), ControlError> {
        let nonce: [u8; 32] = rand::random();
        let hex: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        let impostor = |reason: String| ControlError::Impostor {
            addr: file.addr.to_string(),
            node: file.node,
            reason,
        };
        let reply: HelloReply = match self
            .send(Method::GET, &format!("/v1/hello?nonce={hex}"), None, false)
            .await
        {
            Ok(r) => r,
            Err(ControlError::Refused { status, message }) => {
                return Err(impostor(format!("it answered {status}: {message}")));
            }
            Err(ControlError::Malformed(e)) => {
                return Err(impostor(format!("its answer is not a hello: {e}")));
            }
            Err(e) => return Err(e),
        };
        if reply.node != file.node {
            return Err(impostor(format!("it is node {}", reply.node)));
        }
        if reply.proof != hello_proof(&file.token, &nonce, &file.node) {
            return Err(impostor("it does not know the token".to_string()));
        }
        Ok(())
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<(Bytes, &'static str)>,
        with_token: bool,
    ) -> Result<T, ControlError> {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if with_token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        }
        if let Some((_, kind)) = &body {
            request = request.header(header::CONTENT_TYPE, *kind);
        }
        let request = request
            .body(Full::new(body.map(|b| b.0).unwrap_or_default()))
            .map_err(ControlError::Request)?;
        let response =
            self.http
                .request(request)
                .await
                .map_err(|source| ControlError::Unreachable {
                    addr: self.base.clone(),
                    source,
                })?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(ControlError::Reading)?
            .to_bytes();
        if !status.is_success() {
            let message = serde_json::from_slice::<ErrorReply>(&body)
                .map_or_else(|_| String::from_utf8_lossy(&body).into_owned(), |e| e.error);
            return Err(ControlError::Refused {
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_slice(&body).map_err(ControlError::Malformed)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<(Bytes, &'static str)>,
    ) -> Result<T, Error> {
        Ok(self.send(method, path, body, true).await?)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        self.call(Method::GET, path, None).await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, Error> {
        let json = serde_json::to_vec(body).expect("requests always serialize");
        self.call(Method::POST, path, Some((json.into(), "application/json")))
            .await
    }

    /// What the node is and holds.
    pub async fn status(&self) -> Result<Status, Error> {
        self.get("/v1/status").await
    }

    /// The node's catalog.
    pub async fn catalog(&self) -> Result<Vec<CatalogEntry>, Error> {
        self.get("/v1/catalog").await
    }

    /// Searches the node's catalog.
    pub async fn search(&self, text: &str) -> Result<Vec<CatalogEntry>, Error> {
        self.get(&format!("/v1/search?q={}", percent_encode(text)))
            .await
    }

    /// Stores a release on the node.
    pub async fn add_release(&self, release: &PreparedRelease) -> Result<CatalogEntry, Error> {
        let body = Bytes::from(encode_upload(release));
        self.call(
            Method::POST,
            "/v1/releases",
            Some((body, "application/octet-stream")),
        )
        .await
    }

    /// Publishes a release stored on the node.
    pub async fn publish(&self, release: &str) -> Result<CatalogEntry, Error> {
        let body = PublishRequest {
            release: release.to_string(),
        };
        self.post("/v1/publish", &body).await
    }

    /// Starts playing; returns the session.
    pub async fn play(&self, request: &PlayRequest) -> Result<u64, Error> {
        let reply: SessionReply = self.post("/v1/play", request).await?;
        Ok(reply.session)
    }

    /// Waits for a session's listen to end.
    pub async fn wait(&self, session: u64) -> Result<Listen, Error> {
        self.get(&format!("/v1/listens/{session}")).await
    }

    /// Stops what is playing.
    pub async fn stop(&self) -> Result<Option<Listen>, Error> {
        self.post("/v1/stop", &()).await
    }

    /// Seeks what is playing; returns the new session.
    pub async fn seek(&self, to_ms: u64) -> Result<u64, Error> {
        let reply: SessionReply = self.post("/v1/seek", &SeekRequest { to_ms }).await?;
        Ok(reply.session)
    }

    /// Writes a track the node holds to `path` (absolute: the node may run elsewhere).
    pub async fn export(&self, track: &str, path: &std::path::Path) -> Result<Exported, Error> {
        let body = ExportRequest {
            track: track.to_string(),
            path: path.to_path_buf(),
        };
        self.post("/v1/export", &body).await
    }

    /// A listener's receipts, as JSON objects.
    pub async fn receipts(&self, listener: &PublicKey) -> Result<Vec<serde_json::Value>, Error> {
        self.get(&format!("/v1/receipts/{listener}")).await
    }

    /// The node records the node holds.
    pub async fn nodes(&self) -> Result<Vec<serde_json::Value>, Error> {
        self.get("/v1/nodes").await
    }

    /// Asks the home node `home` to subscribe the node's listener; `auto_renew` keeps a
    /// standing order.
    pub async fn subscribe(
        &self,
        home: PublicKey,
        payment_ref: &str,
        auto_renew: bool,
    ) -> Result<Subscribed, Error> {
        let body = SubscribeRequest {
            home,
            payment_ref: payment_ref.to_string(),
            auto_renew,
        };
        self.post("/v1/subscribe", &body).await
    }

    /// Ends the listener's standing order.
    pub async fn cancel_renewal(&self) -> Result<Cancelled, Error> {
        self.post("/v1/subscriptions/cancel", &serde_json::json!({}))
            .await
    }

    /// The node's subscriptions and pending requests.
    pub async fn subscriptions(&self) -> Result<Subscriptions, Error> {
        self.get("/v1/subscriptions").await
    }

    /// The review status of every home node's `month`.
    pub async fn month_status(&self, month: Month) -> Result<Vec<crate::review::Status>, Error> {
        self.get(&format!("/v1/months/{month}")).await
    }

    /// This listener's month, checked.
    pub async fn month_mine(&self, month: Month) -> Result<crate::review::mine::Mine, Error> {
        self.get(&format!("/v1/months/{month}/mine")).await
    }

    /// An artist's earnings per month and home node.
    pub async fn earnings(
        &self,
        artist: &PublicKey,
    ) -> Result<Vec<crate::review::earnings::Earning>, Error> {
        self.get(&format!("/v1/earnings/{artist}")).await
    }

    /// Every dispute of the months under review.
    pub async fn disputes(&self) -> Result<Vec<crate::review::DisputeEntry>, Error> {
        self.get("/v1/disputes").await
    }

    /// One dispute, with its evidence and the node's findings.
    pub async fn dispute(&self, id: &str) -> Result<crate::review::DisputeDetail, Error> {
        self.get(&format!("/v1/disputes/{id}")).await
    }

    /// Decides a suspect dispute the node arbitrates.
    pub async fn decide_dispute(
        &self,
        id: &str,
        exclude: bool,
    ) -> Result<crate::review::DisputeEntry, Error> {
        let decision = if exclude { "exclude" } else { "keep" };
        self.post(
            &format!("/v1/disputes/{id}/{decision}"),
            &serde_json::json!({}),
        )
        .await
    }

    /// This home node's report and detail of `day`.
    pub async fn day(&self, day: nineten_protocol::daily::Day) -> Result<DayReport, Error> {
        self.get(&format!("/v1/days/{day}")).await
    }

    /// The export of `home`'s `month`.
    pub async fn month_export(&self, month: Month, home: &PublicKey) -> Result<MonthExport, Error> {
        self.get(&format!("/v1/months/{month}/export/{home}")).await
    }

    /// Approves or rejects a pending request (its id or the start of it).
    pub async fn decide(&self, id: &str, approve: bool) -> Result<Subscribed, Error> {
        let decision = if approve { "approve" } else { "reject" };
        self.post(
            &format!("/v1/subscriptions/{}/{decision}", percent_encode(id)),
            &(),
        )
        .await
    }

    /// Asks the node to shut down.
    pub async fn shutdown(&self) -> Result<(), Error> {
        let _: serde_json::Value = self.post("/v1/shutdown", &()).await?;
        Ok(())
    }
}

/// `text` for a URL's query: unreserved characters as they are, the rest as `%XX`.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}
