//! InitProducerId for an idempotent producer: the broker hands out the id (from its block of the
//! controller's ids) and epoch 0, exactly as it does for a seedlog producer. Transactional ids
//! are refused: seedlog has no transactions.

use super::errors;
use crate::protocol::ErrorCode;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

/// Kafka's TRANSACTIONAL_ID_AUTHORIZATION_FAILED would mislead; INVALID_REQUEST says it plainly.
pub fn refused(req: &InitProducerIdRequest) -> Option<InitProducerIdResponse> {
    req.transactional_id.as_ref()?;
    let mut resp = InitProducerIdResponse::default();
    resp.error_code = errors::INVALID_REQUEST;
    Some(resp)
}

pub fn answer(result: Option<Result<(u64, u16), ErrorCode>>) -> InitProducerIdResponse {
    let mut resp = InitProducerIdResponse::default();
    match result {
        Some(Ok((id, epoch))) => {
            resp.producer_id = ProducerId(id as i64);
            resp.producer_epoch = epoch as i16;
        }
        Some(Err(e)) => resp.error_code = errors::kafka_code(e),
        None => resp.error_code = errors::REQUEST_TIMED_OUT,
    }
    resp
}
