//! `conn list`: every worker scans its own table (a slice per poll) and
//! the control thread merges the answers.

use super::Control;
use crate::conn_list::{info, limit, ConnQuery};
use sluice_proto::{self as proto, ErrorCode, Reply, ReplyBody};
use std::time::Duration;

/// How long a worker may take to answer a query.
const QUERY_WAIT: Duration = Duration::from_secs(5);

impl Control<'_> {
    /// Asks every worker for its connections matching `filter`.
    pub(super) fn conn_list(&self, filter: &proto::ConnFilter) -> Reply {
        let limit = limit(filter);
        let mut waiting = Vec::new();
        for (i, q) in self.rings.queries.iter().enumerate() {
            let (tx, rx) = crossbeam_channel::bounded(1);
            if q.push(ConnQuery::new(filter.clone(), tx)).is_err() {
                let busy = format!("worker {i} is busy with other queries");
                return Reply::error(ErrorCode::Internal, busy);
            }
            waiting.push((i, rx));
        }
        let mut all = Vec::new();
        let mut truncated = false;
        for (i, rx) in waiting {
            let Ok((found, more, now)) = rx.recv_timeout(QUERY_WAIT) else {
                return Reply::error(ErrorCode::Internal, format!("worker {i} did not answer"));
            };
            truncated |= more;
            all.extend(found.iter().map(|c| info(c, i, now)));
        }
        if all.len() > limit {
            all.truncate(limit);
            truncated = true;
        }
        Reply::ok(ReplyBody::Connections(proto::ConnList {
            connections: all,
            truncated,
        }))
    }
}
