//! The fields of every REST resource type, and how SQLite computes those of the large tables.
//!
//! Every JSON field of a REST row (read.rs builds most rows) is listed here; a query string
//! naming any other field is a 400, as in Buildbot (`http/api/spec.rs`). For the tables the
//! REST layer pages in SQL (`http/api/sql.rs`) each field also says how SQLite can compute it:
//! `field__op=value` and `order=` reach SQL only through this table, so a field name from a
//! query string never does, only the `&'static str` expressions below, and values are always
//! bound parameters. Resources answered in memory (builders, workers, ...) list their fields
//! as `Computed`.

use serde_json::Value;

/// The JSON type of a non-null value of a [`Col::Value`] field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Int,
    Text,
}

/// A JSON constant (the same in every row).
#[derive(Clone, Copy, Debug)]
pub enum Const {
    Null,
    Int(i64),
    Bool(bool),
}

impl Const {
    pub fn value(self) -> Value {
        match self {
            Const::Null => Value::Null,
            Const::Int(i) => i.into(),
            Const::Bool(b) => b.into(),
        }
    }
}

/// How SQLite computes one JSON field.
#[derive(Clone, Copy, Debug)]
pub enum Col {
    /// A number or string column/expression; JSON `null` where SQL gives NULL (`nullable`).
    Value {
        sql: &'static str,
        kind: Kind,
        nullable: bool,
    },
    /// A boolean: the SQL conditions true exactly where the JSON value is true / false.
    Bool {
        when_true: &'static str,
        when_false: &'static str,
    },
    /// The same value in every row (`masterid`, `locks_duration_s`, ...).
    Const(Const),
    /// Built in memory, from stored JSON or other tables (`files`, `parent_changeids`, every
    /// field of a resource without a table): SQL cannot compare it the way the REST API does,
    /// so queries on it are answered in memory.
    Computed,
    /// A JSON object or list of objects (`properties`, `sourcestamps`, `urls`, ...). Buildbot
    /// cannot read a filter value of its type (`invalid filter value for properties`, a 400);
    /// ordering on it is done in memory.
    Json,
}

#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub col: Col,
}

/// One REST resource type's fields; for a large collection also its table and natural order.
#[derive(Debug)]
pub struct Entity {
    /// The table SQL listings read; empty for resources not stored in a table (masters, force
    /// schedulers, log contents), which are always answered in memory.
    pub table: &'static str,
    pub fields: &'static [Field],
    /// The listing's order without `order=` (and the tie-break after it), as SQL expressions
    /// (empty without a table).
    pub base_order: &'static [&'static str],
}

impl Entity {
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

const fn int(sql: &'static str) -> Col {
    Col::Value {
        sql,
        kind: Kind::Int,
        nullable: false,
    }
}
const fn int_or_null(sql: &'static str) -> Col {
    Col::Value {
        sql,
        kind: Kind::Int,
        nullable: true,
    }
}
const fn text(sql: &'static str) -> Col {
    Col::Value {
        sql,
        kind: Kind::Text,
        nullable: false,
    }
}
const fn text_or_null(sql: &'static str) -> Col {
    Col::Value {
        sql,
        kind: Kind::Text,
        nullable: true,
    }
}
const fn f(name: &'static str, col: Col) -> Field {
    Field { name, col }
}

/// `complete` derived from `complete_at` (builds, steps).
const DONE_AT: Col = Col::Bool {
    when_true: "complete_at IS NOT NULL",
    when_false: "complete_at IS NULL",
};
/// A stored 0/1 `complete` flag. The JSON is `complete != 0`; write.rs only ever stores 0 or 1,
/// so `= 1` is the same and lets SQLite search an index.
const COMPLETE_FLAG: Col = Col::Bool {
    when_true: "complete = 1",
    when_false: "complete = 0",
};

pub const BUILDS: Entity = Entity {
    table: "builds",
    base_order: &["buildid"],
    fields: &[
        f("builderid", int("builderid")),
        f("buildid", int("buildid")),
        f("buildrequestid", int("buildrequestid")),
        f("complete", DONE_AT),
        f("complete_at", int_or_null("complete_at")),
        f("locks_duration_s", Col::Const(Const::Int(0))),
        f("masterid", Col::Const(Const::Int(super::read::MASTERID))),
        f("number", int("number")),
        f("properties", Col::Json),
        f("results", int_or_null("results")),
        f("started_at", int("started_at")),
        f("state_string", text("state_string")),
        f("workerid", int("workerid")),
    ],
};

pub const STEPS: Entity = Entity {
    table: "steps",
    base_order: &["buildid", "number"],
    fields: &[
        f("buildid", int("buildid")),
        f("complete", DONE_AT),
        f("complete_at", int_or_null("complete_at")),
        f(
            "hidden",
            Col::Bool {
                when_true: "hidden != 0",
                when_false: "hidden = 0",
            },
        ),
        f("locks_acquired_at", int_or_null("started_at")),
        f("name", text("name")),
        f("number", int("number")),
        f("results", int_or_null("results")),
        f("started_at", int_or_null("started_at")),
        f("state_string", text("state_string")),
        f("stepid", int("stepid")),
        f("urls", Col::Json),
    ],
};

pub const LOGS: Entity = Entity {
    table: "logs",
    base_order: &["logid"],
    fields: &[
        f(
            "complete",
            Col::Bool {
                when_true: "complete != 0",
                when_false: "complete = 0",
            },
        ),
        f("logid", int("logid")),
        f("name", text("name")),
        f("num_lines", int("num_lines")),
        f("slug", text("slug")),
        f("stepid", int("stepid")),
        f("type", text("type")),
    ],
};

pub const BUILDREQUESTS: Entity = Entity {
    table: "buildrequests",
    base_order: &["buildrequestid"],
    fields: &[
        f("builderid", int("builderid")),
        f("buildrequestid", int("buildrequestid")),
        f("buildsetid", int("buildsetid")),
        f(
            "claimed",
            Col::Bool {
                when_true: "claimed_at IS NOT NULL",
                when_false: "claimed_at IS NULL",
            },
        ),
        f("claimed_at", int_or_null("claimed_at")),
        f(
            "claimed_by_masterid",
            int_or_null("(CASE WHEN claimed_at IS NULL THEN NULL ELSE 1 END)"),
        ),
        f("complete", COMPLETE_FLAG),
        f("complete_at", int_or_null("complete_at")),
        f("priority", int("priority")),
        // Always null here (Buildbot fills it only for some callers), but of a JSON type.
        f("properties", Col::Json),
        // read.rs shows a NULL result (not finished) as -1, like Buildbot.
        f("results", int("COALESCE(results, -1)")),
        f("submitted_at", int("submitted_at")),
        f("waited_for", Col::Const(Const::Bool(false))),
    ],
};

pub const BUILDSETS: Entity = Entity {
    table: "buildsets",
    base_order: &["bsid"],
    fields: &[
        f("bsid", int("bsid")),
        f("complete", COMPLETE_FLAG),
        f("complete_at", int_or_null("complete_at")),
        f("external_idstring", text_or_null("external_idstring")),
        f("parent_buildid", Col::Const(Const::Null)),
        f("parent_relationship", Col::Const(Const::Null)),
        f("reason", text("reason")),
        f("rebuilt_buildid", Col::Const(Const::Null)),
        f("results", int_or_null("results")),
        f("sourcestamps", Col::Json),
        f("submitted_at", int("submitted_at")),
    ],
};

pub const CHANGES: Entity = Entity {
    table: "changes",
    base_order: &["changeid"],
    fields: &[
        f("author", text("author")),
        f("branch", text("branch")),
        f("category", text_or_null("category")),
        f("changeid", int("changeid")),
        f("codebase", text("codebase")),
        f("comments", text("comments")),
        f("committer", text_or_null("committer")),
        f("files", Col::Computed),
        f("parent_changeids", Col::Computed),
        f("project", text("project")),
        f("properties", Col::Json),
        f("repository", text("repository")),
        f("revision", text("COALESCE(revision, '')")),
        f("revlink", text_or_null("revlink")),
        f("sourcestamp", Col::Json),
        f("when_timestamp", int("when_timestamp")),
    ],
};

/// A resource answered in memory (a filter or order on its fields is done there).
const fn memory(
    table: &'static str,
    base_order: &'static [&'static str],
    fields: &'static [Field],
) -> Entity {
    Entity {
        table,
        fields,
        base_order,
    }
}
const fn computed(name: &'static str) -> Field {
    f(name, Col::Computed)
}
const fn json(name: &'static str) -> Field {
    f(name, Col::Json)
}

pub const BUILDERS: Entity = memory(
    "builders",
    &["builderid"],
    &[
        computed("builderid"),
        computed("description"),
        computed("description_format"),
        computed("description_html"),
        computed("masterids"),
        computed("name"),
        computed("projectid"),
        computed("tags"),
    ],
);

pub const WORKERS: Entity = memory(
    "workers",
    &["workerid"],
    &[
        json("configured_on"),
        json("connected_to"),
        computed("graceful"),
        computed("name"),
        computed("pause_reason"),
        computed("paused"),
        computed("workerid"),
        json("workerinfo"),
    ],
);

pub const MASTERS: Entity = memory(
    "",
    &[],
    &[
        computed("active"),
        computed("last_active"),
        computed("masterid"),
        computed("name"),
    ],
);

pub const FORCESCHEDULERS: Entity = memory(
    "",
    &[],
    &[
        json("all_fields"),
        computed("builder_names"),
        computed("button_name"),
        computed("enabled"),
        computed("label"),
        computed("name"),
    ],
);

/// `/logs/<id>/contents` (and `/raw`, which Buildbot checks against the same type).
pub const LOGCHUNKS: Entity = memory(
    "",
    &[],
    &[
        computed("content"),
        computed("firstline"),
        computed("logid"),
    ],
);

/// `/builds/<id>/properties`: Buildbot's type for it has no field names at all.
pub const BUILD_PROPERTIES: Entity = memory("", &[], &[]);
