//! Integration tests: the real service over real HTTP, each with its own temp folder.

mod architecture;
mod behaviour;
mod durability;
mod helpers;
mod hostile;
mod http;
mod live_events;
mod logging;
mod process;
mod reference;
mod security;
mod storage;
