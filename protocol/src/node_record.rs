//! The node record (`review.md`, "Node record"): a node's signed statement of its cluster,
//! the first month it may home listeners or review, and its operator's display name.

use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::key::{PublicKey, Signature};
use crate::month::Month;
use crate::record::{Body, Fields, Record, check_version, write_month};

/// A signed node record.
pub type SignedNodeRecord = Record<NodeRecord>;

/// An operator's display name: UTF-8 of 1 to 64 bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeName(String);

impl NodeName {
    /// Most bytes in a name.
    pub const MAX: usize = 64;

    /// Checks the length.
    pub fn new(name: impl Into<String>) -> Result<Self, FieldError> {
        let name = name.into();
        if name.is_empty() || name.len() > Self::MAX {
            return Err(FieldError::new(
                "name",
                format!("{} bytes, 1 to 64 allowed", name.len()),
            ));
        }
        Ok(Self(name))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a node says of itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeRecord {
    /// The node's key, which signs the record.
    pub node: PublicKey,
    /// The record with the highest seq replaces the node's others.
    pub seq: u64,
    /// Declared by the operator: a region or a group of operators.
    pub cluster: u16,
    /// The first month the node may home listeners or review.
    pub joined: Month,
    /// The operator's display name.
    pub name: NodeName,
}

/// Domain tag of node records.
pub const NODE_TAG: &[u8; 13] = b"9ten/node/v1\0";

impl Body for NodeRecord {
    const TAG: &'static [u8] = NODE_TAG;
    type Json = NodeJson;

    fn signer(&self) -> &PublicKey {
        &self.node
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.node.0);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.cluster.to_be_bytes());
        write_month(self.joined, out);
        let name = self.name.0.as_bytes();
        let len = u16::try_from(name.len()).expect("NodeName bounds the length");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(name);
    }

    fn read(f: &mut Fields<'_>) -> Result<Self, FieldError> {
        Ok(Self {
            node: f.key("node")?,
            seq: f.u64("seq")?,
            cluster: f.u16("cluster")?,
            joined: f.month("joined")?,
            name: NodeName::new(f.text("name")?)?,
        })
    }

    fn to_json(&self, sig: Signature) -> NodeJson {
        NodeJson {
            v: 1,
            node: self.node,
            seq: self.seq,
            cluster: self.cluster,
            joined: self.joined,
            name: self.name.0.clone(),
            sig,
        }
    }

    fn from_json(j: NodeJson) -> Result<(Self, Signature), FieldError> {
        check_version(j.v)?;
        Ok((
            Self {
                node: j.node,
                seq: j.seq,
                cluster: j.cluster,
                joined: j.joined,
                name: NodeName::new(j.name)?,
            },
            j.sig,
        ))
    }
}

/// The JSON form of a node record.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeJson {
    v: u64,
    node: PublicKey,
    seq: u64,
    cluster: u16,
    joined: Month,
    name: String,
    sig: Signature,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;

    fn sample(name: &str) -> SignedNodeRecord {
        let key = Keypair::from_seed([4; 32]);
        Record::sign(
            NodeRecord {
                node: key.public(),
                seq: 3,
                cluster: 2,
                joined: "2026-10".parse().unwrap(),
                name: NodeName::new(name).unwrap(),
            },
            &key,
        )
    }

    #[test]
    fn message_layout_matches_spec() {
        let r = sample("Ålesund");
        let m = r.message();
        assert_eq!(&m[..13], b"9ten/node/v1\0");
        assert_eq!(&m[45..53], &3u64.to_be_bytes());
        assert_eq!(&m[53..55], &2u16.to_be_bytes());
        assert_eq!(&m[55..58], &[0x07, 0xea, 10]);
        assert_eq!(&m[58..60], &8u16.to_be_bytes());
        assert_eq!(&m[60..], "Ålesund".as_bytes());
    }

    #[test]
    fn round_trips_and_verifies() {
        let r = sample("north-1");
        assert_eq!(SignedNodeRecord::from_json(&r.to_json()).unwrap(), r);
        assert_eq!(SignedNodeRecord::from_bytes(&r.to_bytes()).unwrap(), r);
        assert!(r.verifies());
        let mut forged = r.clone();
        forged.body.cluster = 3;
        assert!(!forged.verifies());
        assert!(r.to_json().starts_with("{\"v\":1,\"node\":"));
        assert!(r.to_json().contains("\"joined\":\"2026-10\""));
    }

    #[test]
    fn errors_name_the_field() {
        let good = sample("x").to_json();
        let cases = [
            (good.replace("\"name\":\"x\"", "\"name\":\"\""), "name"),
            (good.replace("2026-10", "2026-00"), "joined"),
            (
                good.replace("\"cluster\":2", "\"cluster\":70000"),
                "cluster",
            ),
            (good.replace("\"v\":1", "\"v\":2"), "v"),
            (good.replace("\"seq\":3,", ""), "seq"),
        ];
        for (text, field) in cases {
            let err = SignedNodeRecord::from_json(&text).unwrap_err();
            assert_eq!(err.field, field, "{text}: {err}");
        }
        let bytes = sample("x").to_bytes();
        let err = SignedNodeRecord::from_bytes(&bytes[..50]).unwrap_err();
        assert_eq!(err.field, "seq");
        let err = SignedNodeRecord::from_bytes(&bytes[..bytes.len() - 1]).unwrap_err();
        assert_eq!(err.field, "sig");
    }
}
