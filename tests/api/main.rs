//! Integration tests: the real service over real HTTP, each with its own temp folder.

mod durability;
