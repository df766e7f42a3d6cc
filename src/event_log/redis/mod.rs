//! The Redis Streams backend (feature `redis`); documented in the
//! [`event_log`](crate::event_log#the-redis-backend) module docs.

mod backend;
mod error;
mod id;
mod link;
mod reader;

pub use self::backend::{Redis, RedisLogBuilder};
pub use self::error::{StartError, Unavailable};
