//! Every link of every replica through its own fault proxy (docs/chaos.md, "Link faults"): its
//! Redis, its NATS, its database and each replica of its peer service. A link fault cuts the
//! proxies of one link of one replica; the same server stays reachable, directly, for the other
//! replicas, the campaign's probes and its other faults.

use std::net::SocketAddr;

use fault_proxy::Proxy;

use crate::{
    error::{Context as _, Result, fail},
    schedule::Link,
};

/// The proxies between one replica and what it depends on.
#[derive(Debug)]
pub struct ReplicaLinks {
    redis: Proxy,
    nats: Proxy,
    database: Proxy,
    /// One per replica of the other service, in fleet order.
    peers: Vec<Proxy>,
}

impl ReplicaLinks {
    /// The proxies that carry `link` (several for the peer: one per replica of it).
    pub fn proxies(&self, link: Link) -> &[Proxy] {
        match link {
            Link::Redis => std::slice::from_ref(&self.redis),
            Link::Nats => std::slice::from_ref(&self.nats),
            Link::Database => std::slice::from_ref(&self.database),
            Link::Peer => &self.peers,
        }
    }

    /// How many connections the replica has opened over `link` so far: the evidence that its
    /// traffic goes through the proxy a fault cuts.
    pub fn accepted(&self, link: Link) -> u64 {
        self.proxies(link).iter().map(Proxy::accepted).sum()
    }
}

/// A server URL split around its one `host:port`, so the same URL can name a proxy instead.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    /// `scheme://` and the user information with its `@`, if any.
    before: String,
    /// `host:port` (the default port added when the URL has none).
    host_port: String,
    /// The path and query, if any.
    after: String,
}

impl Endpoint {
    /// Splits `url`; `default_port` is its scheme's. A URL naming several hosts (a replica set)
    /// or none (DNS seed lists, `mongodb+srv`) can't be put behind one proxy and is refused.
    fn parse(url: &str, default_port: u16) -> Result<Self> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return fail(format!("{url}: not a URL"));
        };
        if scheme.ends_with("+srv") {
            return fail(format!(
                "{scheme}:// names no host; the link faults need host:port"
            ));
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, after) = rest.split_at(end);
        let (user, host_port) = match authority.rsplit_once('@') {
            Some((user, host)) => (format!("{user}@"), host),
            None => (String::new(), authority),
        };
        if host_port.is_empty() || host_port.contains(',') {
            return fail(format!(
                "{scheme}://…{host_port}: the link faults need exactly one host"
            ));
        }
        // A port is what follows the last colon, unless that colon is inside an IPv6 literal.
        let has_port = host_port
            .rsplit_once(':')
            .is_some_and(|(_, port)| !port.contains(']'));
        Ok(Self {
            before: format!("{scheme}://{user}"),
            host_port: if has_port {
                host_port.to_owned()
            } else {
                format!("{host_port}:{default_port}")
            },
            after: after.to_owned(),
        })
    }

    /// The address the server listens on.
    async fn resolve(&self) -> Result<SocketAddr> {
        tokio::net::lookup_host(&self.host_port)
            .await
            .context(format!("resolve {}", self.host_port))?
            .next()
            .ok_or_else(|| crate::error::Error(format!("{} resolves to nothing", self.host_port)))
    }

    /// The same URL with `addr` (a proxy) as its host.
    fn through(&self, addr: SocketAddr) -> String {
        format!("{}{addr}{}", self.before, self.after)
    }
}

/// A proxy to the server of `url` and the URL that goes through it.
async fn proxy(url: &str, default_port: u16) -> Result<(Proxy, String)> {
    let endpoint = Endpoint::parse(url, default_port)?;
    let proxy = Proxy::start(endpoint.resolve().await?)
        .await
        .context("start a fault proxy")?;
    let through = endpoint.through(proxy.addr());
    Ok((proxy, through))
}

/// Adds `directConnection=true` to a MongoDB URI that lacks it: a driver that discovers a
/// replica set would go on to the members' own addresses, around the proxy.
fn direct(uri: String) -> String {
    if uri.contains("directConnection=") {
        uri
    } else if uri.contains('?') {
        format!("{uri}&directConnection=true")
    } else if uri
        .split_once("://")
        .is_some_and(|(_, rest)| rest.contains('/'))
    {
        format!("{uri}?directConnection=true")
    } else {
        format!("{uri}/?directConnection=true")
    }
}

/// Where one replica's links lead.
#[derive(Debug)]
pub struct Upstreams<'a> {
    /// The run's Redis.
    pub redis_url: &'a str,
    /// The run's NATS.
    pub nats_url: &'a str,
    /// The replica's database: a PostgreSQL URL (students) or a MongoDB URI (courses).
    pub database_url: &'a str,
    /// Whether the database is MongoDB.
    pub mongodb: bool,
    /// The gRPC URLs (`http://host:port`) of every replica of the other service.
    pub peers: Vec<&'a str>,
}

/// What a replica is given instead of the servers' own addresses.
#[derive(Debug)]
pub struct ProxiedUrls {
    /// `REDIS_URL`.
    pub redis: String,
    /// `NATS_URL`.
    pub nats: String,
    /// `DATABASE_URL` / `MONGODB_URI`.
    pub database: String,
    /// `COURSES_GRPC_URL` / `STUDENTS_GRPC_URL`, comma-separated.
    pub peers: String,
}

/// Starts the proxies of one replica's links.
pub async fn start(upstreams: &Upstreams<'_>) -> Result<(ReplicaLinks, ProxiedUrls)> {
    let (redis, redis_url) = proxy(upstreams.redis_url, 6379).await?;
    let (nats, nats_url) = proxy(upstreams.nats_url, 4222).await?;
    let (database, mut database_url) = if upstreams.mongodb {
        proxy(upstreams.database_url, 27017).await?
    } else {
        proxy(upstreams.database_url, 5432).await?
    };
    if upstreams.mongodb {
        database_url = direct(database_url);
    }
    let mut peers = Vec::new();
    let mut peer_urls = Vec::new();
    for url in &upstreams.peers {
        let (peer, through) = proxy(url, 80).await?;
        peers.push(peer);
        peer_urls.push(through);
    }
    Ok((
        ReplicaLinks {
            redis,
            nats,
            database,
            peers,
        },
        ProxiedUrls {
            redis: redis_url,
            nats: nats_url,
            database: database_url,
            peers: peer_urls.join(","),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_split_around_its_host_and_rebuilt_around_a_proxy() {
        let proxy: SocketAddr = "127.0.0.1:40000".parse().expect("an address");
        for (url, port, host_port, through) in [
            (
                "postgres://postgres@127.0.0.1:5432/chaos_x",
                5432,
                "127.0.0.1:5432",
                "postgres://postgres@127.0.0.1:40000/chaos_x",
            ),
            (
                "postgres://u:p@db/x?sslmode=disable",
                5432,
                "db:5432",
                "postgres://u:p@127.0.0.1:40000/x?sslmode=disable",
            ),
            (
                "mongodb://127.0.0.1:27018/?directConnection=true",
                27017,
                "127.0.0.1:27018",
                "mongodb://127.0.0.1:40000/?directConnection=true",
            ),
            (
                "redis://127.0.0.1:6390",
                6379,
                "127.0.0.1:6390",
                "redis://127.0.0.1:40000",
            ),
            (
                "http://[::1]:50010",
                80,
                "[::1]:50010",
                "http://127.0.0.1:40000",
            ),
            ("nats://[::1]", 4222, "[::1]:4222", "nats://127.0.0.1:40000"),
        ] {
            let endpoint = Endpoint::parse(url, port).expect("a URL with one host");
            assert_eq!(endpoint.host_port, host_port, "{url}");
            assert_eq!(endpoint.through(proxy), through, "{url}");
        }
        assert!(Endpoint::parse("mongodb://a:1,b:2/?replicaSet=rs", 27017).is_err());
        assert!(Endpoint::parse("mongodb+srv://cluster.example/", 27017).is_err());
        assert!(Endpoint::parse("127.0.0.1:5432", 5432).is_err());
    }

    #[test]
    fn a_proxied_mongodb_uri_connects_directly() {
        assert_eq!(
            direct("mongodb://127.0.0.1:1".into()),
            "mongodb://127.0.0.1:1/?directConnection=true"
        );
        assert_eq!(
            direct("mongodb://127.0.0.1:1/db".into()),
            "mongodb://127.0.0.1:1/db?directConnection=true"
        );
        assert_eq!(
            direct("mongodb://127.0.0.1:1/?w=1".into()),
            "mongodb://127.0.0.1:1/?w=1&directConnection=true"
        );
        assert_eq!(
            direct("mongodb://h:1/?directConnection=true".into()),
            "mongodb://h:1/?directConnection=true"
        );
    }
}
