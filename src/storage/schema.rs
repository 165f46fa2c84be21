//! Diesel table definitions, matching migrations/.

diesel::table! {
    /// One row per stored entry. `id` is assigned by the writer in commit order.
    logs (id) {
        id -> BigInt,
        service -> Text,
        level -> Integer,
        message -> Text,
        /// JSON array of strings.
        tags -> Text,
        /// JSON object of strings.
        attributes -> Text,
        time_us -> BigInt,
        received_us -> BigInt,
    }
}

diesel::table! {
    /// One row per (entry, tag), so tag filters use an index.
    log_tags (tag, log_id) {
        tag -> Text,
        log_id -> BigInt,
    }
}

diesel::table! {
    /// Every service seen, for ListServices without scanning logs.
    services (name) {
        name -> Text,
    }
}

diesel::table! {
    /// Every tag each service has used, for ListTags.
    service_tags (service, tag) {
        service -> Text,
        tag -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(logs, log_tags, services, service_tags);
