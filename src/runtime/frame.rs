//! PLACEHOLDER until the codec branch lands: `[len u32 LE][crc32c u32 LE][postcard payload]`.

use serde::{de::DeserializeOwned, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("bad frame: {0}")]
    Bad(String),
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let payload = postcard::to_allocvec(value).unwrap_or_default();
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

#[derive(Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }
    pub fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        if self.buf.len() < 8 {
            return Ok(None);
        }
        let len = u32::from_le_bytes(self.buf[0..4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(self.buf[4..8].try_into().unwrap());
        if self.buf.len() < 8 + len {
            return Ok(None);
        }
        let payload: Vec<u8> = self.buf.drain(..8 + len).skip(8).collect();
        if crc32c::crc32c(&payload) != crc {
            return Err(FrameError::Bad("crc".into()));
        }
        postcard::from_bytes(&payload)
            .map(Some)
            .map_err(|e| FrameError::Bad(e.to_string()))
    }
}
