//! The cache's promise under partial faults (issue 26; docs/behaviour.md §6), as scenarios that
//! run against any nis service: once a write is acknowledged — 2xx over HTTP, OK over gRPC — no
//! read through any replica, over either transport, shows an older version of what it changed
//! (the entity, the list page), while one replica is cut from Redis, after the cut heals, while
//! Redis is paused and after it resumes, and after Redis evicted a generation key. A write that
//! cannot make its cache safe first is refused — `503 unavailable` / `UNAVAILABLE` — with
//! nothing committed.
//!
//! Every scenario runs two replicas of one service on one database, one key prefix and one
//! stream prefix of their own, and reads through both, over HTTP and gRPC (the replicas run in
//! the test process, like [`TestService`]). Each service's tests instantiate them with a
//! [`Service`] that says how to start a replica and make its gRPC calls, usually through
//! [`cache_link_tests!`](crate::cache_link_tests), which makes one test per scenario.
//!
//! Each would have failed against the cache before issue 26: a replica cut from Redis
//! acknowledged its write (200) although it could not invalidate, so the other replica — and
//! itself, once healed — served the old value from the cache until its TTL; and a generation
//! key evicted by Redis read as 0, which made an entry stored under 0 before the write current
//! again.

use std::{net::SocketAddr, process::Child, time::Duration};

use nis_runtime::{config::ServiceSettings, secret::Secret};
use reqwest::Response;
use serde_json::Value;
use tonic::{Code, Status, transport::Channel};

pub use fault_proxy::{Cut, Proxy};
pub use futures::future::BoxFuture;
pub use nis_server::Running;

use crate::{TestService, contract::Kind, metric_value, unique_name, wait_for};

/// A gRPC call's answer, as the scenarios see it.
pub type Reply<T> = BoxFuture<'static, Result<T, Status>>;

/// The gRPC calls of one service, with entities as JSON in the shape the HTTP API gives them
/// (at least `id`, the kind's text field and its links field).
pub struct Grpc {
    /// `Get{Kind}(id)`.
    pub get: fn(Channel, String) -> Reply<Value>,
    /// `List{Kinds}` with no page (the first page, as `GET /api/{kind}` without a query).
    pub list: fn(Channel) -> Reply<Vec<Value>>,
    /// `Update{Kind}(id, body)`, `body` being a valid HTTP `PUT` body (no expected version).
    pub update: fn(Channel, String, Value) -> Reply<Value>,
    /// `Delete{Kind}(id)` (no expected version).
    pub delete: fn(Channel, String) -> Reply<()>,
}

/// How to run replicas of one service for the scenarios.
pub struct Service {
    /// How to make valid entities of its kind.
    pub kind: &'static Kind,
    /// Makes a database of its own for one test; returns its name.
    pub new_database: fn() -> BoxFuture<'static, String>,
    /// Drops a database [`Service::new_database`] made.
    pub drop_database: fn(String) -> BoxFuture<'static, ()>,
    /// Starts one replica with these settings on that database.
    pub start: fn(ServiceSettings, String) -> BoxFuture<'static, Running>,
    /// Its gRPC calls.
    pub grpc: Grpc,
}

/// What one read shows of an entity: the value of the kind's text field, or that it is not
/// there (404, `NOT_FOUND`, missing from the list page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Not there.
    Absent,
    /// There, with this text.
    Text(String),
}

/// How the service answered a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 2xx over HTTP, OK over gRPC: every later read must show it.
    Acknowledged,
    /// `503 unavailable` over HTTP, `UNAVAILABLE` over gRPC: nothing may have been committed.
    Refused,
}

/// Two replicas of one service on one database, key prefix and stream prefix.
/// What the writes of a scenario answered, and what every read must show because of them.
struct Writes {
    expected: Seen,
    answers: Vec<(&'static str, Answer)>,
    /// The fault the writes were made under, for the messages.
    during: String,
}

impl Writes {
    /// Records the answer of the write `what`; if acknowledged, every read from now on must
    /// show `then`. Then every read through both replicas must show what is expected.
    async fn answered(
        &mut self,
        replicas: &Replicas,
        service: &Service,
        id: &str,
        what: &'static str,
        answer: Answer,
        then: Seen,
    ) {
        self.answers.push((what, answer));
        if answer == Answer::Acknowledged {
            self.expected = then;
        }
        let when = format!("{}, after {what} answered {answer:?}", self.during);
        replicas
            .assert_reads(service, id, &self.expected, &when)
            .await;
    }
}

struct Replicas {
    /// Replica 1 (it removes the database when it stops).
    first: TestService,
    /// Replica 2, the one the scenarios cut from Redis or write through.
    second: TestService,
    prefix: String,
}

impl Replicas {
    /// Starts replica 1 with its cache at `first_redis` and replica 2 at `second_redis`, on a
    /// fresh database, key prefix and streams.
    async fn start(service: &Service, first_redis: &str, second_redis: &str) -> Self {
        let database = (service.new_database)().await;
        let prefix = unique_name("t");
        crate::queue::create_streams(&prefix).await;
        let settings = |redis_url: &str| {
            let mut settings = crate::settings(&prefix, false);
            settings.cache.url = Secret::new(redis_url.to_owned());
            settings
        };
        let first = TestService::new(
            (service.start)(settings(first_redis), database.clone()).await,
            prefix.clone(),
            (service.drop_database)(database.clone()),
        );
        let second = TestService::new(
            (service.start)(settings(second_redis), database).await,
            prefix.clone(),
            Box::pin(async {}),
        );
        Self {
            first,
            second,
            prefix,
        }
    }

    fn both(&self) -> [(&'static str, &TestService); 2] {
        [("replica 1", &self.first), ("replica 2", &self.second)]
    }

    /// Asserts that every read of entity `id` through both replicas — HTTP get and list page,
    /// gRPC get and list — shows `expected`; `when` names the moment in the failure message.
    async fn assert_reads(&self, service: &Service, id: &str, expected: &Seen, when: &str) {
        for (name, replica) in self.both() {
            for (read, seen) in reads(service, replica, id).await {
                assert_eq!(
                    &seen, expected,
                    "{when}: {read} through {name} shows {seen:?}, expected {expected:?} (the last acknowledged write)"
                );
            }
        }
    }

    /// Asserts whether the list page read through both replicas, over HTTP and gRPC, holds an
    /// entity whose text is `text`.
    async fn assert_listed(&self, service: &Service, text: &str, listed: bool, when: &str) {
        for (name, replica) in self.both() {
            for (read, texts) in list_texts(service, replica).await {
                assert_eq!(
                    texts.iter().any(|t| t == text),
                    listed,
                    "{when}: {read} through {name} lists {texts:?}; {text:?} expected listed: {listed}"
                );
            }
        }
    }

    /// Waits until both replicas' `/readyz` shows their cache up (its connection answers again,
    /// which also ends their short back-off, so the reads that follow go through the cache).
    async fn wait_cache_up(&self) {
        for (name, replica) in self.both() {
            wait_cache_up(replica, name).await;
        }
    }

    async fn stop(self) {
        self.second.stop().await;
        self.first.stop().await;
    }
}

/// Waits until `replica`'s `/readyz` shows its cache up.
pub async fn wait_cache_up(replica: &TestService, name: &str) {
    wait_for(
        &format!("{name}'s cache to be up in /readyz"),
        Duration::from_secs(20),
        || async {
            let ready = replica.get("/readyz").await;
            let ready: Value = ready.json().await.ok()?;
            (ready["dependencies"]["cache"]["state"] == "up").then_some(())
        },
    )
    .await;
}

/// The value of the kind's text field in `valid(n)`.
fn text(kind: &Kind, n: u32) -> String {
    (kind.valid)(n)[kind.text_field]
        .as_str()
        .expect("a text field")
        .to_owned()
}

fn seen(kind: &Kind, entity: &Value) -> Seen {
    Seen::Text(
        entity[kind.text_field]
            .as_str()
            .unwrap_or_else(|| panic!("{} in {entity}", kind.text_field))
            .to_owned(),
    )
}

fn in_page(kind: &Kind, page: &[Value], id: &str) -> Seen {
    page.iter()
        .find(|e| e["id"] == id)
        .map_or(Seen::Absent, |e| seen(kind, e))
}

/// `GET /api/{kind}` (the first page, the one the scenarios keep cached).
async fn http_page(replica: &TestService, kind: &Kind) -> Vec<Value> {
    let response = replica.get(&format!("/api/{}", kind.name)).await;
    assert_eq!(response.status(), 200, "a list read never fails");
    let page: Value = response.json().await.expect("JSON");
    page["data"].as_array().expect("a page").clone()
}

async fn grpc_page(service: &Service, replica: &TestService) -> Vec<Value> {
    (service.grpc.list)(replica.channel().await)
        .await
        .expect("a gRPC list never fails")
}

/// Every read of entity `id` through `replica`: HTTP get, HTTP list, gRPC get, gRPC list.
/// A read that fails otherwise than as "not found" fails the test: reads never fail because of
/// the cache.
pub async fn reads(
    service: &Service,
    replica: &TestService,
    id: &str,
) -> Vec<(&'static str, Seen)> {
    let kind = service.kind;
    let response = replica.get(&format!("/api/{}/{id}", kind.name)).await;
    let http_get = match response.status().as_u16() {
        404 => Seen::Absent,
        200 => seen(kind, &response.json::<Value>().await.expect("JSON")["data"]),
        status => panic!("HTTP GET of {id}: {status}, and reads never fail because of the cache"),
    };
    let grpc_get = match (service.grpc.get)(replica.channel().await, id.to_owned()).await {
        Ok(entity) => seen(kind, &entity),
        Err(status) if status.code() == Code::NotFound => Seen::Absent,
        Err(status) => {
            panic!("gRPC get of {id}: {status:?}, and reads never fail because of the cache")
        }
    };
    vec![
        ("HTTP GET", http_get),
        (
            "HTTP list",
            in_page(kind, &http_page(replica, kind).await, id),
        ),
        ("gRPC get", grpc_get),
        (
            "gRPC list",
            in_page(kind, &grpc_page(service, replica).await, id),
        ),
    ]
}

/// The texts of the list page through `replica`, over HTTP and gRPC.
async fn list_texts(service: &Service, replica: &TestService) -> Vec<(&'static str, Vec<String>)> {
    let kind = service.kind;
    let texts = |page: Vec<Value>| -> Vec<String> {
        page.iter()
            .filter_map(|e| e[kind.text_field].as_str().map(str::to_owned))
            .collect()
    };
    vec![
        ("HTTP list", texts(http_page(replica, kind).await)),
        ("gRPC list", texts(grpc_page(service, replica).await)),
    ]
}

/// How an HTTP write was answered: 2xx, or `503` with the error code `unavailable`; anything
/// else fails the test.
pub async fn http_answer(response: Response, what: &str) -> (Answer, Value) {
    let status = response.status();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    if status.is_success() {
        (Answer::Acknowledged, body)
    } else if status == 503 && body["error"]["code"] == "unavailable" {
        (Answer::Refused, body)
    } else {
        panic!("{what}: neither acknowledged nor refused as unavailable: {status} {body}")
    }
}

/// How a gRPC write was answered: OK, or `UNAVAILABLE`; anything else fails the test.
pub fn grpc_answer<T: std::fmt::Debug>(reply: Result<T, Status>, what: &str) -> Answer {
    match reply {
        Ok(_) => Answer::Acknowledged,
        Err(status) if status.code() == Code::Unavailable => Answer::Refused,
        Err(status) => panic!("{what}: neither OK nor UNAVAILABLE: {status:?}"),
    }
}

/// How long a write that must succeed is tried again while it is refused.
const RETRY_FOR: Duration = Duration::from_secs(20);

/// Sends an HTTP write that must succeed, again while it is refused with `503 unavailable` (a
/// refused write committed nothing, so a client tries again, as here; under the load of a whole
/// test run a cache call may miss its deadline even with Redis up); its body when acknowledged.
pub async fn until_acknowledged<F, Fut>(what: &str, mut send: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Response>,
{
    wait_for(&format!("{what} acknowledged"), RETRY_FOR, || {
        let sent = send();
        async move {
            let (answer, body) = http_answer(sent.await, what).await;
            (answer == Answer::Acknowledged).then_some(body)
        }
    })
    .await
}

/// [`until_acknowledged`] for a gRPC write: `send` is tried again while it is `UNAVAILABLE`.
pub async fn until_ok<T: std::fmt::Debug>(what: &str, mut send: impl FnMut() -> Reply<T>) -> T {
    wait_for(&format!("{what} OK"), RETRY_FOR, || {
        let sent = send();
        async move {
            match sent.await {
                Ok(value) => Some(value),
                Err(status) if status.code() == Code::Unavailable => None,
                Err(status) => panic!("{what}: neither OK nor UNAVAILABLE: {status:?}"),
            }
        }
    })
    .await
}

/// Creates `valid(n)` through `replica` (tried again while refused); returns its id.
async fn create(replica: &TestService, kind: &Kind, n: u32) -> String {
    let path = format!("/api/{}", kind.name);
    let body = (kind.valid)(n);
    let created =
        until_acknowledged(&format!("POST {path}"), || replica.post_json(&path, &body)).await;
    id_of(&created["data"])
}

/// `nis_cache_fence_refusals_total` of the kind's service (both replicas run in the test
/// process, so one exposition counts both).
async fn fence_refusals(replica: &TestService, kind: &Kind) -> f64 {
    metric_value(
        &replica.metrics().await,
        "nis_cache_fence_refusals_total",
        &[("service", kind.name)],
    )
}

fn id_of(entity: &Value) -> String {
    entity["id"].as_str().expect("id").to_owned()
}

/// A [`Proxy`] to the shared test Redis, and the Redis URL that goes through it.
pub async fn proxy_to_the_test_redis() -> (Proxy, String) {
    let redis = crate::redis_url();
    let proxy = Proxy::start(redis_addr(&redis).await)
        .await
        .expect("start the proxy");
    let url = redis_url_at(&redis, proxy.addr());
    (proxy, url)
}

/// The address a `redis://` URL names, resolved.
async fn redis_addr(url: &str) -> SocketAddr {
    let (_, host_port, _) = split_redis_url(url);
    tokio::net::lookup_host(&host_port)
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .unwrap_or_else(|| panic!("resolve {host_port}"))
}

/// `url` with its host and port replaced by `addr` (credentials and database kept).
fn redis_url_at(url: &str, addr: SocketAddr) -> String {
    let (before, _, after) = split_redis_url(url);
    format!("{before}{addr}{after}")
}

/// A `redis://[user:password@]host[:port][/db]` URL as (scheme and credentials, `host:port`,
/// the rest).
fn split_redis_url(url: &str) -> (String, String, String) {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let (scheme, rest) = url.split_at(scheme_end);
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(authority_end);
    let (credentials, host_port) = authority
        .rsplit_once('@')
        .map_or(("", authority), |(c, h)| (c, h));
    let host_port = if host_port
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host_port.to_owned()
    } else {
        format!("{host_port}:6379")
    };
    let before = if credentials.is_empty() {
        scheme.to_owned()
    } else {
        format!("{scheme}{credentials}@")
    };
    (before, host_port, after.to_owned())
}

/// The operator's story of issue 26, for one way of cutting a link: replica 2 reaches the
/// shared Redis through a [`Proxy`], replica 1 directly. Both have the entity and the list
/// page cached; the proxy is cut (`how`); an HTTP `PUT`, a gRPC `Update`, an HTTP `DELETE` and
/// an HTTP `POST` go through replica 2. Each answer is either acknowledged — and then every read
/// through both replicas, over both transports, during the cut and after the heal, shows it —
/// or `503 unavailable` / `UNAVAILABLE` — and then every read, during the cut (replica 2's
/// reads go to the database then) and after the heal, still shows the old value: nothing was
/// committed. With the cut in place every one of them must in fact be refused (and counted in
/// `nis_cache_fence_refusals_total`). Once healed, writes through replica 2 succeed and
/// replica 1 shows each at once, a delete included.
///
/// Against the old cache the `PUT` was 200 and replica 1 (and replica 2, once healed) kept
/// serving the old value from the cache: the first read after it fails this scenario.
pub async fn a_write_through_a_replica_cut_from_redis_is_refused_or_seen_everywhere(
    service: &Service,
    how: Cut,
) {
    let kind = service.kind;
    let (proxy, through_proxy) = proxy_to_the_test_redis().await;
    let replicas = Replicas::start(service, &crate::redis_url(), &through_proxy).await;
    let (one, two) = (&replicas.first, &replicas.second);
    let id = create(one, kind, 1).await;
    let path = format!("/api/{}/{id}", kind.name);
    let expected = Seen::Text(text(kind, 1));
    // Twice: the first reads fill the caches, the second are served from them.
    for _ in 0..2 {
        replicas
            .assert_reads(service, &id, &expected, "before the cut")
            .await;
    }
    assert!(
        proxy.accepted() > 0,
        "replica 2 reaches Redis through the proxy"
    );
    let refusals_before = fence_refusals(one, kind).await;

    proxy.cut(how);
    let cut = format!("with replica 2 cut from Redis ({how:?})");
    let mut writes = Writes {
        expected,
        answers: Vec::new(),
        during: cut.clone(),
    };

    let (answer, _) = http_answer(
        two.put_json(&path, &(kind.valid)(2)).await,
        "HTTP PUT through replica 2",
    )
    .await;
    writes
        .answered(
            &replicas,
            service,
            &id,
            "HTTP PUT",
            answer,
            Seen::Text(text(kind, 2)),
        )
        .await;

    let reply = (service.grpc.update)(two.channel().await, id.clone(), (kind.valid)(3)).await;
    let answer = grpc_answer(reply, "gRPC Update through replica 2");
    writes
        .answered(
            &replicas,
            service,
            &id,
            "gRPC Update",
            answer,
            Seen::Text(text(kind, 3)),
        )
        .await;

    let (answer, _) = http_answer(two.delete(&path).await, "HTTP DELETE through replica 2").await;
    writes
        .answered(&replicas, service, &id, "HTTP DELETE", answer, Seen::Absent)
        .await;

    let created = text(kind, 4);
    let (answer, _) = http_answer(
        two.post_json(&format!("/api/{}", kind.name), &(kind.valid)(4))
            .await,
        "HTTP POST through replica 2",
    )
    .await;
    writes.answers.push(("HTTP POST", answer));
    let created_listed = answer == Answer::Acknowledged;
    let when = format!("{cut}, after an HTTP POST answered {answer:?}");
    replicas
        .assert_listed(service, &created, created_listed, &when)
        .await;

    proxy.heal();
    replicas.wait_cache_up().await;
    for _ in 0..2 {
        let when = format!("after the cut ({how:?}) healed");
        replicas
            .assert_reads(service, &id, &writes.expected, &when)
            .await;
        replicas
            .assert_listed(service, &created, created_listed, &when)
            .await;
    }

    let answers = &writes.answers;
    assert!(
        answers.iter().all(|(_, a)| *a == Answer::Refused),
        "{cut}, every write through it is refused (nothing committed): {answers:?}"
    );
    let refused = fence_refusals(one, kind).await - refusals_before;
    assert!(
        refused >= 4.0,
        "nis_cache_fence_refusals_total counts the {} refused writes: {refused}",
        answers.len()
    );

    // Healed, replica 2 writes again, and replica 1 shows each write at once.
    let body = (kind.valid)(5);
    until_acknowledged("HTTP PUT through the healed replica 2", || {
        two.put_json(&path, &body)
    })
    .await;
    let after = "after a write through the healed replica 2";
    replicas
        .assert_reads(service, &id, &Seen::Text(text(kind, 5)), after)
        .await;
    let channel = two.channel().await;
    until_ok("gRPC Update through the healed replica 2", || {
        (service.grpc.update)(channel.clone(), id.clone(), (kind.valid)(6))
    })
    .await;
    replicas
        .assert_reads(service, &id, &Seen::Text(text(kind, 6)), after)
        .await;
    until_acknowledged("HTTP DELETE through the healed replica 2", || {
        two.delete(&path)
    })
    .await;
    replicas
        .assert_reads(service, &id, &Seen::Absent, after)
        .await;

    replicas.stop().await;
}

/// A `redis-server` of one test on a free port of loopback, with no persistence; killed when
/// dropped. [`PrivateRedis::pause`] stops it with `SIGSTOP` (its connections stay open and
/// nothing answers), [`PrivateRedis::resume`] continues it with its data.
pub struct PrivateRedis {
    child: Child,
    port: u16,
}

impl PrivateRedis {
    /// Starts `redis-server` (from `PATH`) and waits until it answers `PING`.
    pub async fn start() -> Self {
        let port = crate::process::free_port();
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start redis-server");
        let redis = Self { child, port };
        let url = redis.url();
        wait_for(
            "the private redis-server to answer",
            Duration::from_secs(20),
            || async {
                let client = redis::Client::open(url.as_str()).ok()?;
                let mut connection = client.get_multiplexed_async_connection().await.ok()?;
                let pong: String = redis::cmd("PING").query_async(&mut connection).await.ok()?;
                (pong == "PONG").then_some(())
            },
        )
        .await;
        redis
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} the private redis-server");
    }

    /// Stops the process (`SIGSTOP`).
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Continues it (`SIGCONT`).
    pub fn resume(&self) {
        self.signal("-CONT");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Redis paused (`SIGSTOP`) while both replicas take writes: a private `redis-server` serves
/// both replicas, which have the entity and the list page cached; it is paused; an HTTP
/// `PUT` through replica 2, a gRPC `Update` through replica 1 and an HTTP `DELETE` through
/// replica 2 are each refused (`503 unavailable` / `UNAVAILABLE`) with nothing committed —
/// every read during the pause (from the database) and after it resumes shows the old value —
/// or, if acknowledged, shown by every later read. After `SIGCONT` every read through both
/// replicas shows the last acknowledged write, and a write succeeds and is shown at once by the
/// other replica.
///
/// Against the old cache the writes during the pause were acknowledged (their invalidation
/// timed out, and was only applied once Redis resumed).
pub async fn writes_while_redis_is_paused_are_refused_and_reads_stay_fresh(service: &Service) {
    let kind = service.kind;
    let redis = PrivateRedis::start().await;
    let replicas = Replicas::start(service, &redis.url(), &redis.url()).await;
    let (one, two) = (&replicas.first, &replicas.second);
    let id = create(one, kind, 1).await;
    let path = format!("/api/{}/{id}", kind.name);
    let expected = Seen::Text(text(kind, 1));
    for _ in 0..2 {
        replicas
            .assert_reads(service, &id, &expected, "before the pause")
            .await;
    }
    let refusals_before = fence_refusals(one, kind).await;

    redis.pause();
    let mut writes = Writes {
        expected,
        answers: Vec::new(),
        during: "Redis paused".to_owned(),
    };
    let (answer, _) = http_answer(
        two.put_json(&path, &(kind.valid)(2)).await,
        "HTTP PUT through replica 2",
    )
    .await;
    writes
        .answered(
            &replicas,
            service,
            &id,
            "HTTP PUT",
            answer,
            Seen::Text(text(kind, 2)),
        )
        .await;

    let reply = (service.grpc.update)(one.channel().await, id.clone(), (kind.valid)(3)).await;
    let answer = grpc_answer(reply, "gRPC Update through replica 1");
    writes
        .answered(
            &replicas,
            service,
            &id,
            "gRPC Update",
            answer,
            Seen::Text(text(kind, 3)),
        )
        .await;

    let (answer, _) = http_answer(two.delete(&path).await, "HTTP DELETE through replica 2").await;
    writes
        .answered(&replicas, service, &id, "HTTP DELETE", answer, Seen::Absent)
        .await;

    redis.resume();
    replicas.wait_cache_up().await;
    for _ in 0..2 {
        replicas
            .assert_reads(service, &id, &writes.expected, "after Redis resumed")
            .await;
    }
    let answers = &writes.answers;
    assert!(
        answers.iter().all(|(_, a)| *a == Answer::Refused),
        "with Redis paused every write is refused (nothing committed): {answers:?}"
    );
    let refused = fence_refusals(one, kind).await - refusals_before;
    assert!(
        refused >= 3.0,
        "nis_cache_fence_refusals_total counts the {} refused writes: {refused}",
        answers.len()
    );

    let body = (kind.valid)(4);
    until_acknowledged("HTTP PUT through replica 2 after the resume", || {
        two.put_json(&path, &body)
    })
    .await;
    replicas
        .assert_reads(
            service,
            &id,
            &Seen::Text(text(kind, 4)),
            "after a write once Redis resumed",
        )
        .await;

    replicas.stop().await;
    drop(redis);
}

/// Which scope's generation key an eviction scenario deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evicted {
    /// `id:{id}`: the entity's.
    Entity,
    /// `list`: every list page's.
    List,
}

/// Deletes `{prefix}:{service}:{scope}:gen` from the shared Redis as an eviction would;
/// returns whether it was there.
async fn evict(prefix: &str, kind: &Kind, scope: &str) -> bool {
    let client = redis::Client::open(crate::redis_url()).expect("the test Redis URL");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the test Redis");
    let deleted: i64 = redis::cmd("DEL")
        .arg(format!("{prefix}:{}:{scope}:gen", kind.name))
        .query_async(&mut connection)
        .await
        .expect("DEL");
    deleted > 0
}

/// An evicted generation key (`maxmemory-policy allkeys-lru` may evict one while entries
/// survive) never brings an old value back. Two replicas on the shared Redis; for each write —
/// an HTTP `POST` (for the list scope), an HTTP `PUT` through replica 2, a gRPC `Update`
/// through replica 1, an HTTP `DELETE` through replica 2 — the scope's generation key is
/// first deleted, as an earlier eviction would, and every read through both replicas fills the
/// caches; then the acknowledged write; then the scope's generation key is deleted again. Every
/// read after shows the write (the entity, the list page; a deleted entity is never served).
///
/// Against the old cache a missing generation read as 0, the generation the entries filled
/// after the first eviction were stored under: the read after the second one served them.
pub async fn an_evicted_generation_never_brings_back_an_old_value(
    service: &Service,
    evicted: Evicted,
) {
    let kind = service.kind;
    let redis = crate::redis_url();
    let replicas = Replicas::start(service, &redis, &redis).await;
    let (one, two) = (&replicas.first, &replicas.second);
    let prefix = replicas.prefix.clone();
    let scope = |id: &str| match evicted {
        Evicted::Entity => format!("id:{id}"),
        Evicted::List => "list".to_owned(),
    };

    let id = if evicted == Evicted::List {
        evict(&prefix, kind, "list").await;
        replicas
            .assert_listed(service, &text(kind, 1), false, "before the create")
            .await;
        let id = create(two, kind, 1).await;
        assert!(
            evict(&prefix, kind, "list").await,
            "the create left a list generation key to evict"
        );
        for _ in 0..2 {
            let when = "after an acknowledged create and the list generation's eviction";
            replicas
                .assert_listed(service, &text(kind, 1), true, when)
                .await;
        }
        id
    } else {
        create(two, kind, 1).await
    };
    let path = format!("/api/{}/{id}", kind.name);
    let mut expected = Seen::Text(text(kind, 1));

    for step in ["HTTP PUT", "gRPC Update", "HTTP DELETE"] {
        evict(&prefix, kind, &scope(&id)).await;
        for _ in 0..2 {
            let when = format!("before the {step}, its scope evicted earlier");
            replicas.assert_reads(service, &id, &expected, &when).await;
        }
        match step {
            "HTTP PUT" => {
                expected = Seen::Text(text(kind, 2));
                let body = (kind.valid)(2);
                until_acknowledged(step, || two.put_json(&path, &body)).await;
            }
            "gRPC Update" => {
                expected = Seen::Text(text(kind, 3));
                let channel = one.channel().await;
                until_ok(step, || {
                    (service.grpc.update)(channel.clone(), id.clone(), (kind.valid)(3))
                })
                .await;
            }
            _ => {
                expected = Seen::Absent;
                until_acknowledged(step, || two.delete(&path)).await;
            }
        }
        assert!(
            evict(&prefix, kind, &scope(&id)).await,
            "the {step} left a generation key of {} to evict",
            scope(&id)
        );
        for _ in 0..2 {
            let when = format!(
                "after an acknowledged {step} and the eviction of {}",
                scope(&id)
            );
            replicas.assert_reads(service, &id, &expected, &when).await;
        }
    }

    replicas.stop().await;
}

/// Makes one `#[tokio::test]` per scenario of this module for a service, given its
/// [`Service`](crate::cache_links::Service).
#[macro_export]
macro_rules! cache_link_tests {
    ($service:expr) => {
        /// A replica cut from Redis by resets: its writes are refused with nothing committed
        /// (or, if acknowledged, read everywhere), during the cut and after the heal.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_write_through_a_replica_cut_from_redis_by_resets_is_refused_or_seen_everywhere()
        {
            $crate::cache_links::a_write_through_a_replica_cut_from_redis_is_refused_or_seen_everywhere(
                &$service,
                $crate::cache_links::Cut::Reset,
            )
            .await;
        }

        /// The same with a blackhole (nothing passes, only timeouts tell).
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_write_through_a_replica_blackholed_from_redis_is_refused_or_seen_everywhere()
        {
            $crate::cache_links::a_write_through_a_replica_cut_from_redis_is_refused_or_seen_everywhere(
                &$service,
                $crate::cache_links::Cut::Blackhole,
            )
            .await;
        }

        /// Writes while Redis is paused (`SIGSTOP`) are refused; after `SIGCONT` every read
        /// shows the last acknowledged write.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn writes_while_redis_is_paused_are_refused_and_reads_stay_fresh() {
            $crate::cache_links::writes_while_redis_is_paused_are_refused_and_reads_stay_fresh(
                &$service,
            )
            .await;
        }

        /// An evicted entity generation never brings back an old entity.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn an_evicted_entity_generation_never_brings_back_an_old_value() {
            $crate::cache_links::an_evicted_generation_never_brings_back_an_old_value(
                &$service,
                $crate::cache_links::Evicted::Entity,
            )
            .await;
        }

        /// An evicted list generation never brings back an old list page.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn an_evicted_list_generation_never_brings_back_an_old_page() {
            $crate::cache_links::an_evicted_generation_never_brings_back_an_old_value(
                &$service,
                $crate::cache_links::Evicted::List,
            )
            .await;
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_urls_are_pointed_elsewhere_keeping_credentials_and_database() {
        let proxy = SocketAddr::from(([127, 0, 0, 1], 4000));
        assert_eq!(
            redis_url_at("redis://127.0.0.1:6379", proxy),
            "redis://127.0.0.1:4000"
        );
        assert_eq!(
            redis_url_at("redis://:secret@redis/2", proxy),
            "redis://:secret@127.0.0.1:4000/2"
        );
        assert_eq!(split_redis_url("redis://redis/2").1, "redis:6379");
    }
}
