//! Content providers: who holds a blob (a track or a seek index), found through the DHT and
//! answered as iroh endpoint addresses. A peer's endpoint is learnt from identify while it is
//! connected (and forgotten when it leaves); a provider the lookup finds but this node is not
//! connected to is dialled, so its endpoint arrives with its identify.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libp2p::kad::{self, QueryId};
use libp2p::{PeerId, Swarm, identify};
use tokio::sync::oneshot;
use tracing::debug;

use super::{Behaviour, Error};

/// How long a lookup that found providers waits for their endpoints after the DHT query
/// ended (the time to dial one and hear its identify).
const ENDPOINT_WAIT: Duration = Duration::from_secs(3);

/// How long a provider lookup goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wait {
    /// Until some reachable provider is known.
    First,
    /// Until the lookup ends.
    All,
}

/// A lookup under way.
#[derive(Debug)]
struct Lookup {
    found: HashSet<PeerId>,
    wait: Wait,
    /// Set when the DHT query ended: the time left for endpoints to arrive.
    ended: Option<Instant>,
    tx: oneshot::Sender<Vec<iroh::EndpointAddr>>,
}

/// The providers concern.
#[derive(Debug, Default)]
pub(super) struct Providers {
    endpoints: HashMap<PeerId, iroh::EndpointAddr>,
    lookups: HashMap<QueryId, Lookup>,
    /// Announcements under way, and who waits for each.
    announcing: HashMap<QueryId, oneshot::Sender<Result<(), Error>>>,
}

impl Providers {
    /// Stores this node's provider record of `key` and offers it to the closest peers;
    /// `tx` hears when that query ends.
    pub(super) fn announce(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        key: kad::RecordKey,
        tx: oneshot::Sender<Result<(), Error>>,
    ) {
        match swarm.behaviour_mut().kad.start_providing(key) {
            Ok(id) => {
                self.announcing.insert(id, tx);
            }
            Err(e) => {
                let _ = tx.send(Err(Error::Provide(e)));
            }
        }
    }

    /// An announcement's query ended.
    pub(super) fn on_announced(&mut self, id: QueryId, result: kad::AddProviderResult) {
        if let Err(e) = result {
            debug!("a provider announcement reached no peer in time: {e}");
        }
        if let Some(tx) = self.announcing.remove(&id) {
            let _ = tx.send(Ok(()));
        }
    }

    /// Starts a lookup of `key`'s providers.
    pub(super) fn look_up(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        key: kad::RecordKey,
        wait: Wait,
        tx: oneshot::Sender<Vec<iroh::EndpointAddr>>,
    ) {
        let id = swarm.behaviour_mut().kad.get_providers(key);
        self.lookups.insert(
            id,
            Lookup {
                found: HashSet::new(),
                wait,
                ended: None,
                tx,
            },
        );
    }

    /// Whether `id` is one of this concern's queries.
    pub(super) fn owns(&self, id: &QueryId) -> bool {
        self.lookups.contains_key(id)
    }

    /// A peer identified itself: keep its endpoint, and answer lookups waiting for it.
    pub(super) fn on_identify(&mut self, peer: PeerId, info: &identify::Info) {
        if let Some(endpoint) = iroh_endpoint(info) {
            self.endpoints.insert(peer, endpoint);
            let waiting: Vec<QueryId> = self
                .lookups
                .iter()
                .filter(|(_, l)| l.found.contains(&peer))
                .map(|(id, _)| *id)
                .collect();
            for id in waiting {
                self.answer_if_ready(id, None);
            }
        }
    }

    /// A peer left: its endpoint is forgotten.
    pub(super) fn on_disconnected(&mut self, peer: &PeerId) {
        self.endpoints.remove(peer);
    }

    /// Progress of a lookup: new providers are dialled when their endpoint is unknown.
    pub(super) fn on_progress(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        id: QueryId,
        result: kad::GetProvidersResult,
        last: bool,
    ) {
        let me = *swarm.local_peer_id();
        let Some(lookup) = self.lookups.get_mut(&id) else {
            return;
        };
        let ended = match result {
            Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) => {
                for p in providers {
                    if p != me && lookup.found.insert(p) && !self.endpoints.contains_key(&p) {
                        let _ = swarm.dial(p);
                    }
                }
                last
            }
            Ok(kad::GetProvidersOk::FinishedWithNoAdditionalRecord { .. }) | Err(_) => true,
        };
        if ended {
            lookup.ended = Some(Instant::now() + ENDPOINT_WAIT);
        }
        self.answer_if_ready(id, None);
    }

    /// Answers lookups whose wait for endpoints ran out.
    pub(super) fn tick(&mut self, now: Instant) {
        let due: Vec<QueryId> = self
            .lookups
            .iter()
            .filter(|(_, l)| l.ended.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.answer_if_ready(id, Some(now));
        }
    }

    /// Answers a lookup when it has what it waits for: a reachable provider (`First`), every
    /// provider's endpoint after the query ended, or the end of the wait.
    fn answer_if_ready(&mut self, id: QueryId, now: Option<Instant>) {
        let Some(lookup) = self.lookups.get(&id) else {
            return;
        };
        let reachable: Vec<iroh::EndpointAddr> = lookup
            .found
            .iter()
            .filter_map(|p| self.endpoints.get(p).cloned())
            .collect();
        let all_known = reachable.len() == lookup.found.len();
        let ready = match lookup.wait {
            Wait::First => !reachable.is_empty() || (lookup.ended.is_some() && all_known),
            Wait::All => lookup.ended.is_some() && all_known,
        };
        let timed_out = now.is_some_and(|now| lookup.ended.is_some_and(|t| t <= now));
        if ready || timed_out {
            let lookup = self.lookups.remove(&id).expect("looked up above");
            let _ = lookup.tx.send(reachable);
        }
    }
}

/// A peer's iroh endpoint from identify: its ed25519 key (the same as its PeerId's) and the
/// ` iroh=<address>` its agent string carries. Unsigned, but iroh authenticates the key, so a
/// wrong address only fails to connect.
fn iroh_endpoint(info: &identify::Info) -> Option<iroh::EndpointAddr> {
    let addr: SocketAddr = info.agent_version.split(" iroh=").nth(1)?.parse().ok()?;
    let key = info.public_key.clone().try_into_ed25519().ok()?.to_bytes();
    let id = iroh::PublicKey::from_bytes(&key).ok()?;
    Some(iroh::EndpointAddr::new(id).with_ip_addr(addr))
}
