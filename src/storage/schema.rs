//! Diesel table definitions, matching migrations/. The shared tables are
//! the columns both backends have; [`mysql`] adds what only MariaDB stores.

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
        /// Hex; empty when the entry has none.
        trace_id -> Text,
        span_id -> Text,
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

diesel::table! {
    /// The key of each stored entry that came with one: a second entry with
    /// the same key is not stored.
    dedup_keys (k) {
        k -> Text,
        log_id -> BigInt,
    }
}

diesel::table! {
    /// Named positions of components that follow the store.
    positions (name) {
        name -> Text,
        value -> Text,
        /// Every record up to this id is safe elsewhere: retention keeps
        /// records above the lowest hold.
        hold_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Entries per minute (since the epoch, rounded down), service and
    /// level: what the volume histogram reads instead of the rows.
    log_counts (minute, service, level) {
        minute -> BigInt,
        service -> Text,
        level -> Integer,
        n -> BigInt,
    }
}

diesel::table! {
    /// SQLite: the trigram index of messages, one row per block of
    /// `BLOCK` consecutive ids (`rowid` is `id / BLOCK`); queries name the
    /// table itself in `MATCH`.
    logs_text (rowid) {
        rowid -> BigInt,
        grams -> Text,
    }
}

diesel::table! {
    /// SQLite only: how far the text index reaches (one row).
    text_index (one) {
        one -> Integer,
        blocks_below -> BigInt,
    }
}

diesel::table! {
    /// Small named documents beside the records (saved views), unique by
    /// kind and name; the body is JSON.
    documents (kind, name) {
        kind -> Text,
        name -> Text,
        body -> Text,
        updated_us -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    logs,
    logs_text,
    text_index,
    log_counts,
    log_tags,
    services,
    service_tags,
    dedup_keys,
    positions
);

/// Tables and columns only the MariaDB store has.
pub mod mysql {
    diesel::table! {
        /// The MariaDB `logs` table in full: the shared columns plus the
        /// Kafka position each entry came from, which makes a redelivery
        /// recognisable. Queries use the shared [`logs`](super::logs); writes
        /// and the redelivery check use this one.
        #[sql_name = "logs"]
        sourced_logs (id) {
            id -> BigInt,
            service -> Text,
            level -> Integer,
            message -> Text,
            tags -> Text,
            attributes -> Text,
            time_us -> BigInt,
            received_us -> BigInt,
            trace_id -> Text,
            span_id -> Text,
            source_partition -> Nullable<Integer>,
            source_offset -> Nullable<BigInt>,
        }
    }

    diesel::table! {
        /// One row holding the next id. Each write batch locks it until
        /// commit, so concurrent writers commit in id order.
        id_sequence (id) {
            id -> TinyInt,
            next_id -> BigInt,
        }
    }

    diesel::table! {
        /// The text index: which pieces of group `grp` hold trigram `gram`
        /// (bit `p` of `pieces`, little-endian, for piece `p`).
        text_grams (grp, gram) {
            grp -> BigInt,
            gram -> Integer,
            pieces -> Binary,
        }
    }

    diesel::table! {
        /// One row: until when writers should not guess ids, because
        /// another writer process is writing too.
        write_contention (id) {
            id -> TinyInt,
            until_us -> BigInt,
        }
    }
}
