//! The Redis Streams backend (feature `redis`); documented in the
//! [`event_log`](crate::event_log#the-redis-backend) module docs.

mod backend;
mod builder;
mod error;
mod hub;
mod id;
mod link;
mod mirror;
mod reader;
mod scripts;

pub use self::backend::Redis;
pub use self::builder::{RedisLogBuilder, RedisStreamsBuilder};
pub use self::error::{StartError, Unavailable};
