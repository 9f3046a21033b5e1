//! The command line's one-shot commands, each its own small composition root: `check` reads
//! a users file as the store would, `import` and `export` move users between a file and the
//! database, `seed` writes made-up users.

pub mod check;
pub mod history;
pub mod seed;
pub mod transfer;
