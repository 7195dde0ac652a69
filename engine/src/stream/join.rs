//! Join links: `tessera://HOST:PORT[,HOST:PORT...]/#TOKEN`, where TOKEN (base64url) carries a
//! random secret the dialer must prove and the SHA-256 fingerprint of the listener's certificate
//! the dialer pins.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::str::FromStr;
use thiserror::Error;

pub const SECRET_LEN: usize = 32;
const FINGERPRINT_LEN: usize = 32;
const SCHEME: &str = "tessera://";
/// More addresses than any machine lists; bounds what a pasted link can make us dial.
const MAX_ADDRESSES: usize = 32;

/// Why a join link was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum JoinError {
    #[error("a join link starts with {SCHEME}")]
    Scheme,
    #[error("join link has no '/#' before its token")]
    NoToken,
    #[error("join link lists no address")]
    NoAddress,
    #[error("join link lists more than {MAX_ADDRESSES} addresses")]
    TooManyAddresses,
    #[error("bad address {0:?} in join link (want HOST:PORT, IPv6 in brackets)")]
    Address(String),
    #[error("bad join token: {0}")]
    Token(String),
}

/// The secret and the certificate fingerprint a join link carries.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct JoinToken {
    pub secret: [u8; SECRET_LEN],
    pub fingerprint: [u8; FINGERPRINT_LEN],
}

impl std::fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        write!(f, "JoinToken {{ fingerprint: {} }}", hex(&self.fingerprint))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl JoinToken {
    pub fn encode(&self) -> String {
        let mut raw = [0u8; SECRET_LEN + FINGERPRINT_LEN];
        raw[..SECRET_LEN].copy_from_slice(&self.secret);
        raw[SECRET_LEN..].copy_from_slice(&self.fingerprint);
        URL_SAFE_NO_PAD.encode(raw)
    }

    pub fn decode(token: &str) -> Result<Self, JoinError> {
        let raw = URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|e| JoinError::Token(e.to_string()))?;
        if raw.len() != SECRET_LEN + FINGERPRINT_LEN {
            return Err(JoinError::Token(format!(
                "{} bytes, want {}",
                raw.len(),
                SECRET_LEN + FINGERPRINT_LEN
            )));
        }
        let mut t = JoinToken {
            secret: [0; SECRET_LEN],
            fingerprint: [0; FINGERPRINT_LEN],
        };
        t.secret.copy_from_slice(&raw[..SECRET_LEN]);
        t.fingerprint.copy_from_slice(&raw[SECRET_LEN..]);
        Ok(t)
    }
}

/// Where to dial and what to pin and prove.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinLink {
    pub addrs: Vec<SocketAddr>,
    pub token: JoinToken,
}

impl std::fmt::Display for JoinLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let addrs: Vec<String> = self.addrs.iter().map(|a| a.to_string()).collect();
        write!(f, "{SCHEME}{}/#{}", addrs.join(","), self.token.encode())
    }
}

impl FromStr for JoinLink {
    type Err = JoinError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.trim().strip_prefix(SCHEME).ok_or(JoinError::Scheme)?;
        let (hosts, token) = rest.split_once("/#").ok_or(JoinError::NoToken)?;
        let parts: Vec<&str> = hosts.split(',').filter(|p| !p.is_empty()).collect();
        if parts.is_empty() {
            return Err(JoinError::NoAddress);
        }
        if parts.len() > MAX_ADDRESSES {
            return Err(JoinError::TooManyAddresses);
        }
        let addrs = parts
            .iter()
            .map(|p| {
                p.parse::<SocketAddr>()
                    .map_err(|_| JoinError::Address(p.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(JoinLink {
            addrs,
            token: JoinToken::decode(token)?,
        })
    }
}

/// SHA-256 of a DER certificate.
pub fn fingerprint(cert_der: &[u8]) -> [u8; FINGERPRINT_LEN] {
    Sha256::digest(cert_der).into()
}

/// Compares secrets in time independent of where they differ.
pub fn secrets_match(a: &[u8; SECRET_LEN], b: &[u8; SECRET_LEN]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_round_trip_and_bad_ones_are_refused() {
        let link = JoinLink {
            addrs: vec![
                "127.0.0.1:4433".parse().unwrap(),
                "[::1]:4433".parse().unwrap(),
            ],
            token: JoinToken {
                secret: [7; 32],
                fingerprint: [9; 32],
            },
        };
        let text = link.to_string();
        assert!(
            text.starts_with("tessera://127.0.0.1:4433,[::1]:4433/#"),
            "{text}"
        );
        assert_eq!(text.parse::<JoinLink>().unwrap(), link);
        assert!(
            !format!("{:?}", link.token).contains("0707"),
            "the secret never prints"
        );

        let token = link.token.encode();
        for (bad, want) in [
            ("http://x/#t".to_string(), JoinError::Scheme),
            ("tessera://127.0.0.1:1".to_string(), JoinError::NoToken),
            (format!("tessera:///#{token}"), JoinError::NoAddress),
            (
                format!("tessera://localhost:1/#{token}"),
                JoinError::Address("localhost:1".into()),
            ),
            (
                format!("tessera://1.2.3.4/#{token}"),
                JoinError::Address("1.2.3.4".into()),
            ),
        ] {
            assert_eq!(bad.parse::<JoinLink>().unwrap_err(), want, "{bad}");
        }
        assert!(matches!(
            "tessera://1.2.3.4:5/#abc".parse::<JoinLink>(),
            Err(JoinError::Token(_))
        ));
        assert!(matches!(
            "tessera://1.2.3.4:5/#!!!!".parse::<JoinLink>(),
            Err(JoinError::Token(_))
        ));
        let many = vec!["1.2.3.4:5"; 33].join(",");
        assert_eq!(
            format!("tessera://{many}/#{token}")
                .parse::<JoinLink>()
                .unwrap_err(),
            JoinError::TooManyAddresses
        );
    }

    #[test]
    fn secrets_compare() {
        assert!(secrets_match(&[1; 32], &[1; 32]));
        let mut b = [1; 32];
        b[31] = 0;
        assert!(!secrets_match(&[1; 32], &b));
    }
}
