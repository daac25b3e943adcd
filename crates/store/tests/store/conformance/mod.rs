//! The conformance suite: every case takes a fresh store ([`Ctx`]) and checks one rule of
//! the store's contract; `cases!` lists them once, and each backend module expands it into
//! `#[tokio::test]`s.

pub mod accounts;
pub mod builds;
pub mod consumers;
pub mod enrolments;
pub mod expiry;
pub mod faults;
pub mod fixtures;
pub mod follow;
pub mod in_force;
pub mod known_bad;
pub mod leases;
pub mod logs;
pub mod roles;
pub mod rollouts;
pub mod secrets;
pub mod sequences;
pub mod states;
pub mod tasks;
pub mod versions;

use std::sync::Arc;

use vupdate_store::{ManualClock, Store, StoreConfig};

/// A fresh, empty store for one case, with a hand-set clock.
pub struct Ctx {
    /// The store, reading its time from `clock`.
    pub store: Store,
    /// The clock, starting at [`fixtures::t0`].
    pub clock: Arc<ManualClock>,
    /// How to open the same store again (another process, or after a restart).
    pub config: StoreConfig,
    /// Keeps a temporary directory alive for the case.
    pub _guard: Option<tempfile::TempDir>,
}

impl Ctx {
    /// Wraps a freshly opened store.
    pub fn new(store: Store, config: StoreConfig, guard: Option<tempfile::TempDir>) -> Ctx {
        let clock = Arc::new(ManualClock::new(fixtures::t0()));
        Ctx {
            store: store.with_clock(clock.clone()),
            clock,
            config,
            _guard: guard,
        }
    }

    /// The same store opened again, sharing the clock.
    pub async fn reopen(&self) -> Store {
        vupdate_store::open(&self.config)
            .await
            .expect("reopen the store")
            .with_clock(self.clock.clone())
    }
}

/// Expands to one `#[tokio::test]` per case, each opening a fresh store with
/// `$open(name)` (which returns `None` to skip, after saying why).
macro_rules! instantiate {
    ($open:path) => {
        crate::conformance::emit_tests! { $open;
            accounts: [add_get_and_list_by_type, add_refuses_a_taken_name, put_keeps_every_version_in_history,
                remove_then_restore_within_seven_days, restore_is_refused_after_seven_days,
                removing_a_missing_account_writes_nothing, a_password_that_is_not_an_argon2_hash_is_refused,
                the_auth_fields_round_trip],
            versions: [query_filters_and_orders_newest_version_first, a_version_number_is_never_reused,
                add_many_is_all_or_nothing, remove_and_restore_a_client_version, sizes_beyond_32_bits_round_trip,
                a_client_record_keeps_its_content_digest_and_settings_stamp],
            tasks: [newest_first_with_every_filter, ending_a_task_keeps_its_history, active_tasks_are_interrupted_at_start,
                types_and_services_are_listed],
            logs: [each_filter_selects_exactly_its_records, min_level_means_that_level_and_above,
                time_range_is_inclusive, text_is_a_case_insensitive_literal_substring, newest_first_with_a_limit_and_paging,
                no_filter_returns_everything, a_batch_with_one_invalid_record_writes_nothing, distinct_values_and_time_range,
                times_keep_milliseconds, random_queries_agree_with_the_feed_matcher,
                the_last_source_sequence_is_per_source, an_expired_source_has_no_last_sequence,
                text_search_means_the_same_through_the_index,
                expired_lines_are_not_found_by_text],
            follow: [replays_then_follows_live, from_now_skips_what_is_stored, follows_only_matching_records,
                query_and_follow_agree_on_text, a_lagging_follower_resyncs_without_gaps, large_batches_are_split,
                concurrent_batches_keep_consecutive_sequences_and_feed_order],
            sequences: [sequences_increase_across_collections_writes, sequences_survive_a_reopen,
                two_stores_on_one_database_never_share_a_sequence],
            roles: [service_and_role_filter_apart, legacy_name_role_records_are_split_once],
            states: [set_replaces_by_key_and_queries_filter, a_cursor_reads_in_sequence_order,
                a_state_batch_with_one_invalid_record_writes_nothing],
            faults: [an_id_matches_exactly, query_by_distribution_service_and_time_newest_first,
                time_range_and_lists_filter_on_the_report_service, invalid_reports_are_refused, remove_and_restore_a_report],
            builds: [set_replaces_and_history_is_newest_first, builds_in_process_fail_at_start],
            known_bad: [recording_merges_and_writes_only_what_is_new,
                lists_filter_by_distribution_and_removal_forgets,
                racing_recorders_on_two_connections_lose_no_instance],
            consumers: [a_report_replaces_the_consumer_s_last_one],
            secrets: [a_secret_is_replaced_by_name_listed_and_removed],
            enrolments: [a_token_is_spent_once_per_use_and_revocation_forgets_it,
                racing_spenders_on_two_connections_spend_each_use_once,
                tokens_expired_before_a_time_are_forgotten_with_their_uses],
            rollouts: [a_rollout_replaces_the_service_s_last_and_lists_by_distribution],
            leases: [one_holder_at_a_time_and_the_token_grows_on_take_over,
                renewal_keeps_the_token_and_release_frees_at_once,
                racing_takers_on_two_connections_get_one_holder,
                a_holder_past_its_expiry_is_fenced_off_until_it_renews],
            in_force: [the_last_record_is_read_back_per_distribution],
            expiry: [logs_expire_by_their_own_ages, faults_expire_by_age_and_by_count, dead_states_and_old_tasks_expire,
                archived_versions_are_purged_after_seven_days, a_second_run_removes_nothing],
        }
    };
}

pub(crate) use instantiate;

/// The expansion behind [`instantiate`].
macro_rules! emit_tests {
    ($open:path; $($group:ident: [$($case:ident),* $(,)?]),* $(,)?) => {
        $(
            mod $group {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $case() {
                        if let Some(ctx) = $open(concat!(stringify!($group), "_", stringify!($case))).await {
                            crate::conformance::$group::$case(ctx).await;
                        }
                    }
                )*
            }
        )*
    };
}

pub(crate) use emit_tests;
