//! The builder's tests: real Git repositories in temp dirs, real build commands, real zips.
//!
//! One test binary, one module per concern:
//! - `support`: source repositories, build requests and a zip reader shared by the others.
//! - `developer`: a full developer build of a small shell program, checked file by file.
//! - `failures`: `exitCode`, `outputMatch` and tag-push failures name the step; no image.
//! - `sources`: reusing a clone, fetching new commits, cloning again when the URL changes.
//! - `cancel`: a cancelled build kills the whole process tree and leaves no image.
//! - `client`: client versions merging settings repositories, and the next generation.
//! - `job`: a whole build job against a real distribution, without the binary.

mod cancel;
mod client;
mod developer;
mod failures;
mod job;
mod sources;
mod support;
