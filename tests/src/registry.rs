//! A real registry (Debian docker-registry) on a free loopback port.
