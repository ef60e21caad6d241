//! `strand-tests`: the harness for end-to-end tests. It starts the real `strand` binary on
//! port 0 with a temporary data directory, reads its ready line and talks to it over HTTP.
//! It owns no product code.
