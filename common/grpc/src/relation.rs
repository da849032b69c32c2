//! `nis.v1.RelationService` (docs/behaviour.md §5.10): the peer's side of a reconciliation run,
//! served by both services over their [`Reconciler`], and the client a run uses to ask the
//! other service, an adapter of the core's [`RelationPeer`] port.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use nis_core::{
    Context, Entity, EntityService, Error,
    reconcile::{
        DigestQuery, PairState, Reconciler, RelationPeer, RelationStore, Repaired,
        digest::MAX_HASHES,
    },
};
use tonic::{Request, Response, Status};

use crate::{
    context,
    peers::{Replicas, request, unavailable},
    proto::v1::{
        self as pb,
        relation_service_client::RelationServiceClient,
        relation_service_server::{RelationService, RelationServiceServer},
    },
    status,
};

/// Leaf buckets listed per `Pairs` call: about 25,000 pairs (2 MB) at 200,000 pairs in all.
const BUCKETS_PER_CALL: usize = 8_192;
// A `Pairs` call the peer would refuse is never made.
const _: () = assert!(BUCKETS_PER_CALL <= MAX_HASHES);
/// The largest answer the client takes: `Pairs` of a side that holds many pairs per bucket.
const MAX_MESSAGE: usize = 64 << 20;

impl From<PairState> for pb::RelationPair {
    fn from(p: PairState) -> Self {
        Self {
            student_id: p.student,
            course_id: p.course,
            linked: p.linked,
            clock: p.clock,
        }
    }
}

impl From<pb::RelationPair> for PairState {
    fn from(p: pb::RelationPair) -> Self {
        Self {
            student: p.student_id,
            course: p.course_id,
            linked: p.linked,
            clock: p.clock,
        }
    }
}

/// A digest query from its message; depths that do not fit are out of bounds.
fn query(message: pb::DigestRequest) -> Result<DigestQuery, Status> {
    let depth = |d: u32| {
        u8::try_from(d).map_err(|_| Status::invalid_argument(format!("depth {d} is out of bounds")))
    };
    let query = DigestQuery {
        bits: depth(message.bits)?,
        within_bits: depth(message.within_bits)?,
        within: message.within,
    };
    query.check().map_err(status)?;
    Ok(query)
}

/// The service over one side's [`Reconciler`].
pub struct RelationGrpc<E, St, Sv> {
    side: Reconciler<E, St, Sv>,
}

impl<E, St, Sv> RelationGrpc<E, St, Sv>
where
    E: Entity,
    St: RelationStore,
    Sv: EntityService<E>,
{
    /// The tonic service of `side`.
    pub fn server(side: Reconciler<E, St, Sv>) -> RelationServiceServer<Self> {
        RelationServiceServer::new(Self { side })
    }
}

#[tonic::async_trait]
impl<E, St, Sv> RelationService for RelationGrpc<E, St, Sv>
where
    E: Entity,
    St: RelationStore,
    Sv: EntityService<E>,
{
    async fn digest(
        &self,
        request: Request<pb::DigestRequest>,
    ) -> Result<Response<pb::DigestResponse>, Status> {
        let query = query(request.into_inner())?;
        let (hashes, _) = self.side.digest(&query).await.map_err(status)?;
        Ok(Response::new(pb::DigestResponse { hashes }))
    }

    async fn pairs(
        &self,
        request: Request<pb::PairsRequest>,
    ) -> Result<Response<pb::PairsResponse>, Status> {
        let buckets = request.into_inner().buckets;
        let pairs = self.side.pairs(&buckets).await.map_err(status)?;
        Ok(Response::new(pb::PairsResponse {
            pairs: pairs.into_iter().map(Into::into).collect(),
        }))
    }

    async fn repair(
        &self,
        request: Request<pb::RepairRequest>,
    ) -> Result<Response<pb::RepairResponse>, Status> {
        let mut ctx = context(&request);
        ctx.transport = nis_core::Transport::Reconcile;
        let pairs = request.into_inner().pairs.into_iter().map(Into::into);
        let repaired = self
            .side
            .repair(&ctx, pairs.collect())
            .await
            .map_err(status)?;
        Ok(Response::new(pb::RepairResponse {
            applied: repaired.applied,
            compensated: repaired.compensated,
            unchanged: repaired.unchanged,
        }))
    }
}

/// The other service's side of a run, over gRPC.
#[derive(Debug, Clone)]
pub struct RelationClient {
    peer: &'static str,
    replicas: Replicas,
    /// Bytes of the requests sent and answers received (protobuf payloads).
    exchanged: Arc<AtomicU64>,
}

impl RelationClient {
    /// A client of the relation service of `peer` (its kind, for errors) at `urls` (one URL,
    /// or a comma-separated list of replicas), each call bounded by `timeout`; connects on
    /// first use.
    pub fn connect(
        peer: &'static str,
        urls: &str,
        timeout: Duration,
    ) -> Result<Self, tonic::transport::Error> {
        Ok(Self {
            peer,
            replicas: Replicas::connect(urls, timeout)?,
            exchanged: Arc::default(),
        })
    }

    /// Counts one exchange.
    fn count(&self, request: &impl prost::Message, answer: &impl prost::Message) {
        let bytes = request.encoded_len() + answer.encoded_len();
        self.exchanged.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn client(
        channel: tonic::transport::Channel,
    ) -> RelationServiceClient<tonic::transport::Channel> {
        RelationServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE)
    }
}

impl RelationPeer for RelationClient {
    async fn digest(&self, ctx: &Context, query: &DigestQuery) -> Result<Vec<u64>, Error> {
        let message = pb::DigestRequest {
            bits: query.bits.into(),
            within_bits: query.within_bits.into(),
            within: query.within.clone(),
        };
        let answer = self
            .replicas
            .call(
                (pb::relation_service_server::SERVICE_NAME, "Digest"),
                |channel| {
                    let request = request(ctx, message.clone());
                    async move { Self::client(channel).digest(request).await }
                },
            )
            .await;
        match answer {
            Ok(response) => {
                self.count(&message, response.get_ref());
                Ok(response.into_inner().hashes)
            }
            Err(status) => Err(unavailable(self.peer, status)),
        }
    }

    async fn pairs(&self, ctx: &Context, buckets: &[u32]) -> Result<Vec<PairState>, Error> {
        let mut pairs = Vec::new();
        for chunk in buckets.chunks(BUCKETS_PER_CALL) {
            let message = pb::PairsRequest {
                buckets: chunk.to_vec(),
            };
            let answer = self
                .replicas
                .call(
                    (pb::relation_service_server::SERVICE_NAME, "Pairs"),
                    |channel| {
                        let request = request(ctx, message.clone());
                        async move { Self::client(channel).pairs(request).await }
                    },
                )
                .await;
            match answer {
                Ok(response) => {
                    pairs.extend(response.into_inner().pairs.into_iter().map(Into::into))
                }
                Err(status) => return Err(unavailable(self.peer, status)),
            }
        }
        Ok(pairs)
    }

    async fn repair(&self, ctx: &Context, pairs: Vec<PairState>) -> Result<Repaired, Error> {
        let message = pb::RepairRequest {
            pairs: pairs.into_iter().map(Into::into).collect(),
        };
        // A repair is idempotent: sending it again to another replica is safe.
        let answer = self
            .replicas
            .call(
                (pb::relation_service_server::SERVICE_NAME, "Repair"),
                |channel| {
                    let request = request(ctx, message.clone());
                    async move { Self::client(channel).repair(request).await }
                },
            )
            .await;
        match answer {
            Ok(response) => {
                self.count(&message, response.get_ref());
                let r = response.into_inner();
                Ok(Repaired {
                    applied: r.applied,
                    compensated: r.compensated,
                    unchanged: r.unchanged,
                })
            }
            Err(status) => Err(unavailable(self.peer, status)),
        }
    }

    fn exchanged(&self) -> u64 {
        self.exchanged.load(Ordering::Relaxed)
    }
}
