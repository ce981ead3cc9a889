"""Schema migrations, applied in order at start-up. Never edit a released one: add a new one."""

from __future__ import annotations

MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """
            CREATE TABLE users (
                id INTEGER PRIMARY KEY,            -- Telegram user id
                chat_id INTEGER,
                first_name TEXT NOT NULL DEFAULT '',
                username TEXT,
                language TEXT NOT NULL DEFAULT 'en',
                settings TEXT NOT NULL DEFAULT '{}',
                created_at REAL NOT NULL,
                last_seen_at REAL NOT NULL
            )
            """,
            """
            CREATE TABLE processed_updates (
                update_id INTEGER PRIMARY KEY,
                processed_at REAL NOT NULL
            )
            """,
            """
            CREATE TABLE jobs (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                user_id INTEGER NOT NULL,
                chat_id INTEGER NOT NULL,
                source_message_id INTEGER,
                kind TEXT NOT NULL,
                state TEXT NOT NULL,
                provider TEXT NOT NULL,
                model TEXT NOT NULL,
                prompt TEXT NOT NULL DEFAULT '',
                params TEXT NOT NULL DEFAULT '{}',
                cost INTEGER NOT NULL DEFAULT 0,
                language TEXT NOT NULL DEFAULT 'en',
                input_path TEXT,
                input_file_id TEXT,
                input_file_unique_id TEXT,
                card_message_id INTEGER,
                status_message_id INTEGER,
                status_text TEXT,
                status_edited_at REAL,
                external_id TEXT,
                provider_data TEXT NOT NULL DEFAULT '{}',
                provider_status TEXT,
                progress REAL,
                queue_position INTEGER,
                same_status_polls INTEGER NOT NULL DEFAULT 0,
                poll_errors INTEGER NOT NULL DEFAULT 0,
                output_url TEXT,
                output_path TEXT,
                error TEXT,
                attempts INTEGER NOT NULL DEFAULT 0,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                submitted_at REAL,
                finished_at REAL,
                next_poll_at REAL,
                lease_owner TEXT,
                lease_until REAL
            )
            """,
            # One job per user message, however often Telegram delivers it.
            """
            CREATE UNIQUE INDEX jobs_source ON jobs (chat_id, source_message_id)
            WHERE source_message_id IS NOT NULL
            """,
            "CREATE INDEX jobs_due ON jobs (state, next_poll_at)",
            "CREATE INDEX jobs_user ON jobs (user_id, state)",
            """
            CREATE TABLE media (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                job_id INTEGER REFERENCES jobs (id),
                chat_id INTEGER NOT NULL,
                message_id INTEGER NOT NULL,
                kind TEXT NOT NULL,
                file_id TEXT NOT NULL,
                file_unique_id TEXT,
                width INTEGER,
                height INTEGER,
                duration REAL,
                size INTEGER,
                created_at REAL NOT NULL
            )
            """,
            "CREATE INDEX media_job ON media (job_id)",
            "CREATE UNIQUE INDEX media_message ON media (chat_id, message_id)",
            """
            CREATE TABLE ledger (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                user_id INTEGER NOT NULL,
                job_id INTEGER REFERENCES jobs (id),
                entry TEXT NOT NULL CHECK (entry IN ('reserve', 'keep', 'refund', 'grant')),
                amount INTEGER NOT NULL,
                reason TEXT NOT NULL DEFAULT '',
                created_at REAL NOT NULL
            )
            """,
            # A job is reserved once and settled once: a second keep or refund is refused.
            """
            CREATE UNIQUE INDEX ledger_once ON ledger (job_id, entry)
            WHERE job_id IS NOT NULL
            """,
            "CREATE INDEX ledger_user ON ledger (user_id, created_at)",
        ],
    ),
    (
        2,
        [
            # When each kind of operator alert was last sent, so admins hear it once.
            """
            CREATE TABLE alerts (
                key TEXT PRIMARY KEY,
                sent_at REAL NOT NULL
            )
            """,
        ],
    ),
    (
        3,
        [
            # A story is a job whose shots are jobs too: each its own provider request, its own
            # credits and its own retries, so a crash or a failed shot never re-bills the others.
            "ALTER TABLE jobs ADD COLUMN parent_id INTEGER REFERENCES jobs (id)",
            "ALTER TABLE jobs ADD COLUMN step INTEGER",
            # One live job per shot; a failed shot may be tried again as a new job.
            """
            CREATE UNIQUE INDEX jobs_shot ON jobs (parent_id, step)
            WHERE parent_id IS NOT NULL
            AND state NOT IN ('failed', 'canceled', 'timed_out', 'stalled', 'unknown')
            """,
            "CREATE INDEX jobs_parent ON jobs (parent_id) WHERE parent_id IS NOT NULL",
            # Photos and clips of a Telegram album, kept from the moment each arrives (an album
            # has no "last item" mark, and fetching an item may take longer than the quiet
            # that ends the album) until a story is made of them.
            """
            CREATE TABLE album_items (
                chat_id INTEGER NOT NULL,
                message_id INTEGER NOT NULL,
                user_id INTEGER NOT NULL,
                media_group_id TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('photo', 'clip')),
                file_id TEXT NOT NULL,
                file_unique_id TEXT,
                path TEXT,                         -- set once fetched and checked
                caption TEXT NOT NULL DEFAULT '',
                width INTEGER,
                height INTEGER,
                duration REAL,
                language TEXT NOT NULL DEFAULT 'en',
                job_id INTEGER REFERENCES jobs (id),
                created_at REAL NOT NULL,          -- when it arrived: quiet counts from here
                PRIMARY KEY (chat_id, message_id)
            )
            """,
            "CREATE INDEX album_items_open ON album_items (job_id, created_at)",
        ],
    ),
    (
        4,
        [
            # Work only one process may do at a time (housekeeping), held for a while and
            # renewed: a process that dies lets its lease lapse and another takes over.
            """
            CREATE TABLE leases (
                name TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                until REAL NOT NULL
            )
            """,
        ],
    ),
    (
        5,
        [
            # Telegram's send limits shared by every process on the database: a token bucket
            # per key ("all", and "chat:<id>"), refilled by time, taken under one lock.
            """
            CREATE TABLE send_tokens (
                key TEXT PRIMARY KEY,
                tokens REAL NOT NULL,
                at REAL NOT NULL
            )
            """,
        ],
    ),
    (
        6,
        [
            # Credit packs bought with Telegram Stars. An order is made when a pack is chosen
            # (its id is the invoice's payload); a payment is what Telegram confirmed, once
            # per charge id whatever redelivers it. Refunds are written on the payment.
            """
            CREATE TABLE orders (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                user_id INTEGER NOT NULL,
                chat_id INTEGER NOT NULL,
                credits INTEGER NOT NULL CHECK (credits > 0),
                stars INTEGER NOT NULL CHECK (stars > 0),
                state TEXT NOT NULL DEFAULT 'open'
                    CHECK (state IN ('open', 'paid', 'refunded')),
                created_at REAL NOT NULL
            )
            """,
            "CREATE INDEX orders_user ON orders (user_id, created_at)",
            """
            CREATE TABLE payments (
                charge_id TEXT PRIMARY KEY,
                order_id INTEGER REFERENCES orders (id),
                user_id INTEGER NOT NULL,
                stars INTEGER NOT NULL,
                credits INTEGER NOT NULL,
                paid_at REAL NOT NULL,
                refunded_at REAL,
                taken_back INTEGER,
                thanked INTEGER NOT NULL DEFAULT 0
            )
            """,
            "CREATE INDEX payments_paid ON payments (paid_at)",
            # How many of a job's credits came from bought ones (the rest from the day's
            # allowance): a refund gives each part back where it came from. Bought credits
            # themselves are 'grant' rows: a pack's credits, or minus what a refund took back.
            "ALTER TABLE ledger ADD COLUMN bought INTEGER NOT NULL DEFAULT 0",
            # When each person was last offered packs on running out: once a day at most.
            """
            CREATE TABLE pack_offers (
                user_id INTEGER PRIMARY KEY,
                offered_at REAL NOT NULL
            )
            """,
        ],
    ),
    (
        7,
        [
            # A job woken by an event (a provider's callback) is claimed before the jobs that
            # are merely due by the clock, and a wake that lands while the job is leased is
            # kept for the next claim rather than overwritten by the release.
            "ALTER TABLE jobs ADD COLUMN woken_at REAL",
        ],
    ),
    (
        8,
        [
            # A claim reads the few jobs due first, in order, instead of sorting every active
            # job: with 10,000 running, that sort cost ~8 ms a claim, and a claim follows each
            # callback. The states are the active ones (repositories' _ACTIVE).
            "CREATE INDEX jobs_due_first ON jobs ((COALESCE(next_poll_at, 0))) "
            "WHERE state IN ('queued', 'submitting', 'running', 'downloading', 'delivering')",
            "CREATE INDEX jobs_woken ON jobs (woken_at) WHERE woken_at IS NOT NULL",
        ],
    ),
]
