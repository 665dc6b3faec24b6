//! A hostile peer: a libp2p swarm in the test that speaks our protocols (receipt sync,
//! catalog, listener receipts, gossip, Kademlia) and lies with every message it can. The
//! victim is a real node on a real store; each test checks that it keeps its data, makes the
//! liar pay (faults, a ban), and keeps serving honest peers.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity};
use libp2p::request_response::{self, ProtocolSupport, cbor};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{StreamProtocol, Swarm, identify, kad, noise, tcp, yamux};
use nineten_node::net::{catalog, holders, receipts};
use nineten_protocol::key::ContentHash;
use nineten_protocol::wire;
use tokio::sync::mpsc;

use crate::support::{TestNode, connect, converge, eventually, october, receipt, start_one};

#[derive(NetworkBehaviour)]
struct Evil {
    gossipsub: gossipsub::Behaviour,
    identify: identify::Behaviour,
    kad: kad::Behaviour<kad::store::MemoryStore>,
    receipts: cbor::Behaviour<receipts::Request, receipts::Response>,
    catalog: cbor::Behaviour<catalog::Request, catalog::Response>,
    holders: cbor::Behaviour<holders::Request, holders::Response>,
}

fn protocol<Req, Resp>(name: &'static str) -> cbor::Behaviour<Req, Resp>
where
    Req: Send + Clone + serde::Serialize + serde::de::DeserializeOwned + 'static,
    Resp: Send + Clone + serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    let codec = cbor::codec::Codec::<Req, Resp>::default()
        .set_request_size_maximum(64 << 20)
        .set_response_size_maximum(64 << 20);
    request_response::Behaviour::with_codec(
        codec,
        [(StreamProtocol::new(name), ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(Duration::from_secs(20)),
    )
}

fn evil_swarm() -> Swarm<Evil> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|key| {
            let peer = key.public().to_peer_id();
            let config = gossipsub::ConfigBuilder::default()
                .validation_mode(gossipsub::ValidationMode::Anonymous)
                .message_id_fn(|m| {
                    gossipsub::MessageId::from(blake3::hash(&m.data).as_bytes().to_vec())
                })
                .heartbeat_interval(Duration::from_millis(200))
                .max_transmit_size(1 << 20)
                .build()
                .unwrap();
            let mut kad = kad::Behaviour::with_config(
                peer,
                kad::store::MemoryStore::with_config(
                    peer,
                    kad::store::MemoryStoreConfig {
                        max_provided_keys: 100_000,
                        ..Default::default()
                    },
                ),
                kad::Config::new(StreamProtocol::new(wire::KAD_PROTOCOL)),
            );
            kad.set_mode(Some(kad::Mode::Server));
            Evil {
                gossipsub: gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, config)
                    .unwrap(),
                identify: identify::Behaviour::new(identify::Config::new(
                    wire::IDENTIFY_VERSION.to_string(),
                    key.public(),
                )),
                kad,
                receipts: protocol(wire::RECEIPT_SYNC_PROTOCOL),
                catalog: protocol(wire::CATALOG_PROTOCOL),
                holders: protocol(wire::HOLDERS_PROTOCOL),
            }
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

/// Connects an evil swarm to `victim` and waits for the connection.
async fn evil_connected_to(victim: &TestNode) -> Swarm<Evil> {
    let mut evil = evil_swarm();
    evil.dial(victim.addr.clone()).unwrap();
    loop {
        if let SwarmEvent::ConnectionEstablished { .. } = evil.select_next_some().await {
            return evil;
        }
    }
}

fn victim_peer(victim: &TestNode) -> libp2p::PeerId {
    match victim.addr.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(p)) => p,
        _ => panic!("the victim's address names its peer id"),
    }
}

/// A negentropy frame: version 1, then ranges of (bound, mode, payload).
fn frame(ranges: &[(u64, &[u8], u8, &[u8])]) -> Vec<u8> {
    let mut f = vec![0x61];
    for (ts, id, mode, payload) in ranges {
        f.push(*ts as u8); // small deltas only: one varint byte
        f.push(id.len() as u8);
        f.extend_from_slice(id);
        f.push(*mode);
        f.extend_from_slice(payload);
    }
    f
}

/// Sends one request and drives `evil` until its answer (or failure) comes.
async fn ask(
    evil: &mut Swarm<Evil>,
    to: &libp2p::PeerId,
    request: receipts::Request,
) -> Option<receipts::Response> {
    let id = evil.behaviour_mut().receipts.send_request(to, request);
    loop {
        match evil.select_next_some().await {
            SwarmEvent::Behaviour(EvilEvent::Receipts(request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            })) if request_id == id => return Some(response),
            SwarmEvent::Behaviour(EvilEvent::Receipts(
                request_response::Event::OutboundFailure { request_id, .. },
            )) if request_id == id => return None,
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sync_requests_neither_stop_nor_inflate_the_victim() {
    let held: Vec<_> = (0..4000u32)
        .map(|i| receipt(i % 40, u64::from(i / 40)))
        .collect();
    let victim = start_one(0, &held).await;
    let mut evil = evil_connected_to(&victim).await;
    let to = victim_peer(&victim);
    let month = october().to_string();
    let reconcile = |frame: Vec<u8>| receipts::Request::Reconcile {
        month: month.clone(),
        frame,
    };
    let fp = [0u8; 16];
    let requests = vec![
        // Bounds going backwards (same time, smaller id): the old protocol panicked here.
        reconcile(frame(&[(5, &[0xff; 32], 0, &[]), (1, &[0x00], 1, &fp)])),
        // An id list that claims a million ids and holds one.
        reconcile(frame(&[(0, &[], 2, &[0x83, 0xd0, 0x88, 0x40, 0xAA])])),
        // Garbage, and an empty frame.
        reconcile(b"\x61\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x07".to_vec()),
        reconcile(Vec::new()),
        // An unknown month.
        receipts::Request::Reconcile {
            month: "9999-99".into(),
            frame: vec![0x61],
        },
        // The whole range as one empty id list: "send me everything you have".
        reconcile(frame(&[(0, &[], 2, &[0x00])])),
    ];
    let mut answers = Vec::new();
    for r in requests {
        answers.push(ask(&mut evil, &to, r).await);
    }
    // The same lies again: an honest peer never sends one, a liar soon runs out of credit.
    for frame in [
        Vec::new(),
        frame(&[(0, &[], 2, &[0x83, 0xd0, 0x88, 0x40, 0xAA])]),
    ] {
        let _ = ask(&mut evil, &to, reconcile(frame)).await;
    }
    // Nothing the victim sent is bigger than a frame: no amplification.
    for a in answers.iter().flatten() {
        if let receipts::Response::Reconcile(f) = a {
            assert!(f.len() as u64 <= receipts::MAX_FRAME, "{} bytes", f.len());
        }
    }
    // Asking for everything gets at most a frame of ids, not 4,000 receipts (928 KB).
    let everything = answers[5].as_ref().expect("answered");
    let receipts::Response::Reconcile(f) = everything else {
        panic!("a frame for a frame: {everything:?}");
    };
    assert!(
        f.len() < 4000 * 232 / 4,
        "{} bytes for 4,000 receipts",
        f.len()
    );
    // Over-sized and hostile fetches.
    let too_many: Vec<u8> = (0..(receipts::MAX_FETCH as u32 + 1))
        .flat_map(|i| *blake3::hash(&i.to_be_bytes()).as_bytes())
        .collect();
    let answers = [
        ask(&mut evil, &to, receipts::Request::Fetch(too_many)).await,
        ask(&mut evil, &to, receipts::Request::Fetch(vec![1, 2, 3])).await,
    ];
    assert!(
        answers
            .iter()
            .all(|a| matches!(a, Some(receipts::Response::Refused) | None)),
        "{answers:?}"
    );
    drop(evil);

    // The victim still serves: its network runs, and an honest newcomer gets everything.
    let honest = start_one(1, &[]).await;
    let nodes = [victim, honest];
    connect(&nodes, 1, 0).await;
    converge(&[&nodes[0], &nodes[1]], 4000, Duration::from_secs(60)).await;
    let stats = nodes[0].client.stats().await.unwrap();
    assert!(stats.banned >= 1, "the liar was banned: {stats:?}");
}

/// The evil peer answers everything the victim asks with lies: frames that claim receipts it
/// does not have, receipts nobody asked for, forged ones, endless catalog pages, pages of a
/// listener's receipts that go backwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_answers_cost_the_liar_and_leave_the_victims_data_alone() {
    let victim = start_one(0, &[receipt(1, 0), receipt(1, 1)]).await;
    let mut evil = evil_connected_to(&victim).await;
    let fake_ids: Vec<u8> = (0..500u32)
        .flat_map(|i| *blake3::hash(&i.to_be_bytes()).as_bytes())
        .collect();
    let mut claim = vec![0x61, 0x00, 0x00, 0x02, 0x83, 0x74]; // whole range, 500 ids
    claim.extend_from_slice(&fake_ids);
    let unasked: Vec<u8> = (0..50u64).flat_map(|s| receipt(99, s).to_bytes()).collect();
    let mut forged = receipt(98, 0).to_bytes().to_vec();
    forged[60] ^= 1;
    let same_page: Vec<u8> = (0..holders::PAGE as u64)
        .flat_map(|_| receipt(1, 0).to_bytes())
        .collect();
    // A well-formed full page (sorted), sent again for every page asked: endless.
    let mut page: Vec<ContentHash> = (0..catalog::MAX_IDS as u32)
        .map(|i| ContentHash(*blake3::hash(&i.to_be_bytes()).as_bytes()))
        .collect();
    page.sort();
    let (mut catalog_pages, mut fetches) = (0, 0);
    let (tx, mut lookup) = mpsc::channel(1);
    let client = victim.client.clone();
    let listener = receipt(1, 0).receipt.listener;
    tokio::spawn(async move {
        let _ = tx.send(client.listener_receipts(listener).await).await;
    });
    let mut found = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        tokio::select! {
            event = evil.select_next_some() => match event {
                SwarmEvent::Behaviour(EvilEvent::Receipts(request_response::Event::Message {
                    message: request_response::Message::Request { request, channel, .. }, ..
                })) => {
                    let answer = match request {
                        receipts::Request::Reconcile { .. } => receipts::Response::Reconcile(claim.clone()),
                        receipts::Request::Fetch(_) => {
                            fetches += 1;
                            let mut lies = unasked.clone();
                            lies.extend_from_slice(&forged);
                            receipts::Response::Receipts(lies)
                        }
                    };
                    let _ = evil.behaviour_mut().receipts.send_response(channel, answer);
                }
                SwarmEvent::Behaviour(EvilEvent::Catalog(request_response::Event::Message {
                    message: request_response::Message::Request { request, channel, .. }, ..
                })) => {
                    let answer = match request {
                        catalog::Request::Ids(_) => {
                            catalog_pages += 1;
                            catalog::Response::Ids(page.clone()) // the same full page, forever
                        }
                        catalog::Request::Records(_) => catalog::Response::Records(Vec::new()),
                    };
                    let _ = evil.behaviour_mut().catalog.send_response(channel, answer);
                }
                SwarmEvent::Behaviour(EvilEvent::Holders(request_response::Event::Message {
                    message: request_response::Message::Request { channel, .. }, ..
                })) => {
                    let _ = evil
                        .behaviour_mut()
                        .holders
                        .send_response(channel, holders::Response::Page(same_page.clone()));
                }
                SwarmEvent::ConnectionClosed { num_established: 0, .. } => break,
                _ => {}
            },
            got = lookup.recv(), if found.is_none() => found = got,
        }
    }
    let stats = victim.client.stats().await.unwrap();
    assert!(
        stats.banned >= 1,
        "the liar was banned and disconnected: {stats:?}"
    );
    assert!(fetches >= 1, "the victim asked for what the liar claimed");
    assert!(
        catalog_pages <= 2,
        "an endless catalog stops: {catalog_pages} pages asked"
    );
    assert_eq!(
        victim.client.held(october()).await.unwrap(),
        2,
        "nothing unasked taken"
    );
    let found = found.expect("the listener lookup ended").unwrap();
    assert_eq!(
        found,
        vec![receipt(1, 0), receipt(1, 1)],
        "only the victim's own copies"
    );
    assert!(victim.client.peers().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_of_fresh_keys_and_of_one_key_are_rate_limited_and_honest_gossip_still_arrives() {
    let victim = start_one(0, &[]).await;
    let honest = start_one(1, &[]).await;
    let nodes = [victim, honest];
    connect(&nodes, 1, 0).await;
    let mut evil = evil_connected_to(&nodes[0]).await;
    let topic = IdentTopic::new(wire::receipt_topic(october()));
    evil.behaviour_mut().gossipsub.subscribe(&topic).unwrap();
    let to = victim_peer(&nodes[0]);
    // Wait until the victim has the evil peer in its mesh.
    let began = tokio::time::Instant::now();
    while !evil
        .behaviour()
        .gossipsub
        .mesh_peers(&topic.hash())
        .any(|p| *p == to)
    {
        tokio::select! {
            _ = evil.select_next_some() => {}
            _ = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "no mesh with the victim"
        );
    }
    // One subscribed key signing as fast as it can, then fresh keys nobody subscribed.
    let looper = crate::support::SUBSCRIBED - 1;
    let flood: Vec<Vec<u8>> = (0..200)
        .map(|seq| receipt(looper, seq))
        .chain((0..12_000u32).map(|i| receipt(1_000_000 + i, 0)))
        .map(|r| r.to_bytes().to_vec())
        .collect();
    let started = tokio::time::Instant::now();
    let mut sent = 0;
    for bytes in flood {
        if evil
            .behaviour_mut()
            .gossipsub
            .publish(topic.clone(), bytes)
            .is_ok()
        {
            sent += 1;
        }
        if sent % 200 == 0 {
            // Let the swarm write what it queued.
            let _ = tokio::time::timeout(Duration::from_millis(1), evil.select_next_some()).await;
        }
    }
    let drive = tokio::spawn(async move {
        loop {
            evil.select_next_some().await;
        }
    });
    eventually(
        "the flood is rate limited and refused",
        Duration::from_secs(30),
        || async {
            let stats = nodes[0].client.stats().await.unwrap();
            stats.rate_limited > 0 && stats.unsubscribed > 0
        },
    )
    .await;
    // An honest receipt still arrives at the victim while it is flooded.
    let mine = receipt(7, 0);
    nodes[1].client.publish(mine).await.unwrap();
    let took = eventually("honest gossip arrives", Duration::from_secs(60), || async {
        nodes[0].store.has_receipt(&mine).unwrap()
    })
    .await;
    eprintln!("the honest receipt reached the flooded victim in {took:?}");
    // Fresh keys are nobody's subscribers: not one of their receipts is carried.
    let fresh = receipt(1_000_000, 0).receipt.listener;
    assert!(
        nodes[0]
            .store
            .receipts_of_listener(&fresh)
            .unwrap()
            .is_empty()
    );
    let elapsed = started.elapsed().as_secs_f64();
    let held = nodes[0].client.held(october()).await.unwrap() as f64;
    // The flood enters the honest side at two doors: the flooder's connection to the victim,
    // and its connection to the honest node (its Kademlia finds it through the victim); each
    // door passes at most its budget, and whatever the honest node holds came through one of
    // them, so reconciling with it adds nothing beyond.
    let budget = 5.0 * receipts::NEW_LISTENERS_PER_SEC + receipts::NEW_LISTENERS_PER_SEC * elapsed;
    assert!(
        held <= 2.0 * budget + 1.0,
        "{held} of {sent} flood receipts taken in {elapsed:.1} s, budget {budget} a door"
    );
    // The looping key: its first receipt at once, then one every 15 s, at each door.
    let key = receipt(looper, 0).receipt.listener;
    let looped = nodes[0]
        .store
        .receipts_of_month(october())
        .unwrap()
        .iter()
        .filter(|r| r.receipt.listener == key)
        .count() as f64;
    let pace = 1.0 + receipts::LISTENER_GOSSIP_PER_SEC * elapsed;
    eprintln!("taken in {elapsed:.1} s: {held} of {sent} flood receipts, {looped} of the looper's");
    assert!(
        looped <= 2.0 * pace,
        "{looped} of 200 receipts of one key taken in {elapsed:.1} s, {pace} a door"
    );
    drive.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_record_spam_leaves_room_for_the_victims_own() {
    let victim = start_one(0, &[]).await;
    let mut evil = evil_connected_to(&victim).await;
    let to = victim_peer(&victim);
    evil.behaviour_mut()
        .kad
        .add_address(&to, victim.addr.clone());
    // More than Kademlia's default store holds in all (1,024).
    let keys: Vec<kad::RecordKey> = (0..1500u32)
        .map(|i| kad::RecordKey::new(blake3::hash(&i.to_be_bytes()).as_bytes()))
        .collect();
    let mut outstanding: HashSet<kad::QueryId> = keys
        .iter()
        .map(|k| evil.behaviour_mut().kad.start_providing(k.clone()).unwrap())
        .collect();
    while !outstanding.is_empty() {
        if let SwarmEvent::Behaviour(EvilEvent::Kad(kad::Event::OutboundQueryProgressed {
            id,
            result: kad::QueryResult::StartProviding(_),
            ..
        })) = evil.select_next_some().await
        {
            outstanding.remove(&id);
        }
    }
    // The victim can still announce its own content, lots of it.
    for i in 0..2000u32 {
        let blob = ContentHash(*blake3::hash(&(i + 1_000_000).to_be_bytes()).as_bytes());
        victim.client.provide(blob).await.unwrap();
    }
    drop(evil);
}
