using Corral.Agent.Admission;
using Corral.Agent.Contract;
namespace Corral.Settings;

/// <summary>Every setting corral has, declared once (Gunicorn's config.py is the model).</summary>
public static class SettingsTable
{
    public const string DefaultGc = "workstation";

    public static readonly Setting App = new()
    {
        Name = "app",
        Flags = [],
        Type = SettingType.String,
        Section = "Application",
        Help = "The app to run: a built ASP.NET Core app's .dll (run with dotnet) or apphost executable, or a project (.csproj, or a folder holding exactly one) that corral publishes first (`dotnet publish -c Release`, into a folder of its own under TMPDIR, never into the project) and publishes again at each HUP (a failed build keeps the old workers). Given as the positional APP argument. An app whose runtimeconfig.json does not use the ASP.NET Core shared framework (a worker service, a console app) is refused before any worker starts (exit 2).",
        AcceptedOverride = "a path to an app .dll, an apphost executable, a .csproj or a project folder",
    };

    public static readonly Setting Bind = new()
    {
        Name = "bind",
        Flags = ["-b", "--bind"],
        Type = SettingType.List,
        Section = "Server socket",
        Default = new List<string> { "127.0.0.1:8000" },
        Help = "The socket to bind; repeat for several. HOST:PORT, [IPv6]:PORT, unix:PATH, or fd://N (an inherited descriptor). Default 127.0.0.1:8000, or 0.0.0.0:$PORT when PORT is set (as Gunicorn). Sockets from systemd (LISTEN_FDS) are used when present. A HOST that is neither an IP address nor a well-formed host name (300.1.1.1, a..b) is bad usage (exit 2, and --check-config says so); a host name that does not resolve fails when corral binds (exit 1).",
        AcceptedOverride = "HOST:PORT, [IPv6]:PORT, unix:PATH or fd://N",
        Validate = v => Listeners.BindAddress.TryParse((string)v, out _, out var error) ? null : error,
    };

    public static readonly Setting Backlog = new()
    {
        Name = "backlog",
        Flags = ["--backlog"],
        Type = SettingType.Int,
        Section = "Server socket",
        Default = 2048L,
        Min = 1,
        Max = 65535,
        Help = "The maximum number of pending connections in the kernel's queue (listen(2) backlog; capped by net.core.somaxconn). Every worker listens with it on every listener, inherited ones (fd://N, systemd) included, as Gunicorn does: the value given is the one the kernel uses (ss -ltn's Send-Q).",
    };

    public static readonly Setting Workers = new()
    {
        Name = "workers",
        Flags = ["-w", "--workers"],
        Type = SettingType.String,
        Section = "Worker processes",
        Default = "1",
        EnvVar = "WEB_CONCURRENCY",
        AcceptedOverride = WorkerRange.Accepted,
        ValueNameOverride = "N|MIN:MAX",
        JsonNumberAllowed = true,
        Validate = v => WorkerRange.Check((string)v),
        Help = "The number of worker processes. WEB_CONCURRENCY sets the default, as with Gunicorn. A start: 2-4 x cores for sync (and workers x --threads about that for gthread); for async, 1 or a few per host: one async worker uses every core, and by default (--accept-policy pack) the others take only its overflow (docs/deployment.md). MIN:MAX (e.g. 1:4; also in WEB_CONCURRENCY and the config file, \"workers\": \"1:4\") starts MIN workers and adapts the count to the load: one more when connections wait in the listen queue or every worker's slots are busy for --scale-up-after, one fewer after --scale-down-after with a worker's worth of slots idle, at most one step per --scale-cooldown. TTIN/TTOU and `corral ctl add/remove N` move MIN and MAX together.",
    };

    public static readonly Setting ScaleUpAfter = new()
    {
        Name = "scale_up_after",
        Flags = ["--scale-up-after"],
        Type = SettingType.Seconds,
        Section = "Worker processes",
        Default = 1.0,
        Help = "With -w MIN:MAX: a worker is added once connections have waited in the listen queue (TCP listeners), or every slot of the ready workers has been busy (sync: 1 per worker, gthread: --threads, async: --worker-connections), in every sample (twice a second) for this long. Not while a worker boots.",
    };

    public static readonly Setting ScaleDownAfter = new()
    {
        Name = "scale_down_after",
        Flags = ["--scale-down-after"],
        Type = SettingType.Seconds,
        Section = "Worker processes",
        Default = 30.0,
        Help = "With -w MIN:MAX: a worker is retired (the idlest, then the oldest; it drains as at HUP) once, for this long, nothing waited in the listen queue and the busiest sample would still have left a free slot with one worker fewer; no sooner than this after the last scale-up.",
    };

    public static readonly Setting ScaleCooldown = new()
    {
        Name = "scale_cooldown",
        Flags = ["--scale-cooldown"],
        Type = SettingType.Seconds,
        Section = "Worker processes",
        Default = 3.0,
        Help = "With -w MIN:MAX: the least time between two changes of the worker count (up or down), so that each step's effect is seen before the next.",
    };

    public static readonly Setting ReadyToRun = new()
    {
        Name = "ready_to_run",
        Flags = ["--ready-to-run"],
        Type = SettingType.Choice,
        Choices = ["on", "off"],
        Section = "Application",
        Default = "on",
        Help = "When APP is a project (not with --reload): on publishes it ReadyToRun for this machine's runtime (`-r RID --self-contained false -p:PublishReadyToRun=true`): the app's own code is compiled ahead of time, so each new worker compiles less at boot, for a longer publish. off: a plain `dotnet publish -c Release`. A built .dll is run as it is: publish it ReadyToRun yourself (docs/deployment.md).",
    };

    public static readonly Setting WorkerClass = new()
    {
        Name = "worker_class",
        Flags = ["-k", "--worker-class"],
        Type = SettingType.Choice,
        Choices = [.. WorkerClassPolicy.All.Select(p => p.Name)],
        Section = "Worker processes",
        Default = WorkerClassPolicy.Default.Name,
        Help = "How a worker takes requests. sync: one at a time, every response closes the connection; unlike Gunicorn's, a slow client does not take the worker (connections whose request head has not arrived are held aside, docs/deployment.md). gthread: --threads at once, keep-alive. async: up to --worker-connections at once (Gunicorn's gevent role). Default async, unlike Gunicorn's sync: ASP.NET Core apps are asynchronous where WSGI apps are not. --threads N (N > 1) without -k picks gthread.",
    };

    public static readonly Setting Threads = new()
    {
        Name = "threads",
        Flags = ["--threads"],
        Type = SettingType.Int,
        Section = "Worker processes",
        Default = 1L,
        Min = 1,
        Max = 4096,
        Help = "Requests a gthread worker runs at once; the worker's thread pool is sized so that this many blocking handlers really run together.",
    };

    public static readonly Setting WorkerConnections = new()
    {
        Name = "worker_connections",
        Flags = ["--worker-connections"],
        Type = SettingType.Int,
        Section = "Worker processes",
        Default = 1000L,
        Min = 1,
        Max = 1_000_000,
        Help = "Connections an async worker holds at once; past that it stops accepting and the kernel queue holds the rest for other workers. A sync worker holds at most this many connections whose request head has not arrived yet (slow clients) besides its one request. A worker also holds no more than its file descriptor limit allows (docs/deployment.md, \"File descriptors\").",
    };

    public static readonly Setting AcceptPolicy = new()
    {
        Name = "accept_policy",
        Flags = ["--accept-policy"],
        Type = SettingType.Choice,
        Choices = [.. Enum.GetNames<AcceptPolicy>().Select(n => n.ToLowerInvariant())],
        Section = "Worker processes",
        Default = "pack",
        Help = "Which async worker takes a new connection. pack: one ready worker takes them all, and the others take a connection only once the queue has stayed non-empty for 10 ms (that worker is saturated, paused or gone); one busy runtime serves more than two on the same cores (bench/results/connection-split.md). kernel: every idle worker accepts and the kernel wakes one, as with Gunicorn's workers. sync and gthread workers ignore it: they accept only with a free slot.",
    };

    public static readonly Setting PackLeaderConnections = new()
    {
        Name = "pack_leader_connections",
        Flags = ["--pack-leader-connections"],
        Type = SettingType.Int,
        Section = "Worker processes",
        Default = 0L,
        Min = 0,
        Max = 1_000_000,
        Help = "--accept-policy pack: once the leading worker holds this many open connections it lets another worker lead, so that a worker that dies (SIGKILL, out of memory) takes only that many keep-alive connections with it (0: no cap; one worker may hold them all). A cap below the clients' pool splits it between workers, which costs throughput on few cores (bench/results/leader-loss.md).",
    };

    public static readonly Setting MaxRequests = new()
    {
        Name = "max_requests",
        Flags = ["--max-requests"],
        Type = SettingType.Int,
        Section = "Worker processes",
        Default = 0L,
        Min = 0,
        Help = "Recycle a worker after it has served this many requests (0: never). Its successor boots first, then it drains.",
    };

    public static readonly Setting MaxRequestsJitter = new()
    {
        Name = "max_requests_jitter",
        Flags = ["--max-requests-jitter"],
        Type = SettingType.Int,
        Section = "Worker processes",
        Default = 0L,
        Min = 0,
        Help = "A random 0..N added to --max-requests per worker, so that workers do not all recycle at once.",
    };

    /// <summary>The smallest --max-worker-memory: an ASP.NET Core worker idles at 40-80 MiB of PSS, so less would recycle for ever.</summary>
    public const long MinWorkerMemory = 32L << 20;

    public static readonly Setting MaxWorkerMemory = new()
    {
        Name = "max_worker_memory",
        Flags = ["--max-worker-memory"],
        Type = SettingType.String,
        Section = "Worker processes",
        Help = "Recycle a worker whose memory (PSS: its private pages plus its share of those it shares) stays above this size after a full garbage collection (unset or 0: never). The worker judges it about once a second: above the limit it collects once, and if it is still above, it stops taking new connections at once (the other workers and the listening queue take them), its successor boots, then it drains as at --max-requests. Each worker also gets a GC heap hard limit at --max-worker-memory-ceiling, unless the app sets one (DOTNET_GCHeapHardLimit*, or the runtimeconfig's System.GC.HeapHardLimit*). Units count in 1024s (512MB = 512 MiB). See docs/deployment.md, \"Keeping workers healthy\".",
        AcceptedOverride = ByteSize.Accepted,
        JsonNumberAllowed = true,
        Validate = v => ByteSize.Parse((string)v) is not { } b ? "not a size"
            : b != 0 && b < MinWorkerMemory ? $"below {MinWorkerMemory >> 20} MiB: an ASP.NET Core worker idles above that, and would be recycled for ever"
            : null,
    };

    public static readonly Setting MaxWorkerMemoryCeiling = new()
    {
        Name = "max_worker_memory_ceiling",
        Flags = ["--max-worker-memory-ceiling"],
        Type = SettingType.String,
        Section = "Worker processes",
        Help = "The hard memory ceiling of a worker (unset or 0: 1.5 x --max-worker-memory; else it must be above it): the master reads each worker's PSS about once a second, and kills one above this at once (SIGKILL, no drain: a leak can outrun a drain); only that worker's requests in flight fail, and a new worker takes its place. It is also the workers' GC heap hard limit. Needs --max-worker-memory.",
        AcceptedOverride = ByteSize.Accepted,
        JsonNumberAllowed = true,
        Validate = v => ByteSize.Parse((string)v) is null ? "not a size" : null,
    };

    /// <summary>
    /// --max-worker-memory-ceiling against --max-worker-memory (both as given, null: unset): the error, or null.
    /// </summary>
    public static string? CheckMemoryLimits(string? limit, string? ceiling)
    {
        var limitBytes = limit is null ? 0 : ByteSize.Parse(limit) ?? 0;
        var ceilingBytes = ceiling is null ? 0 : ByteSize.Parse(ceiling) ?? 0;
        if (ceilingBytes == 0)
        {
            return null;
        }
        if (limitBytes == 0)
        {
            return $"--max-worker-memory-ceiling ({MaxWorkerMemoryCeiling.Name}): '{ceiling}' needs --max-worker-memory (the limit it is a ceiling above)";
        }
        return ceilingBytes <= limitBytes
            ? $"--max-worker-memory-ceiling ({MaxWorkerMemoryCeiling.Name}): '{ceiling}' is not valid: it must be above --max-worker-memory ('{limit}'), or be left unset (1.5 x the limit)"
            : null;
    }

    public static readonly Setting MaxWorkerLifetime = new()
    {
        Name = "max_worker_lifetime",
        Flags = ["--max-worker-lifetime"],
        Type = SettingType.Seconds,
        Section = "Worker processes",
        Default = 0.0,
        Help = "Recycle a worker once it is this many seconds old (0: never; uWSGI's max-worker-lifetime, IIS's periodicRestart time). Its successor boots first, then it drains. One worker is recycled at a time, and when the recycling boots would cost more CPU than --max-recycle-cpu, the recycles are spaced out further (logged once). See docs/deployment.md, \"Keeping workers healthy\".",
    };

    public static readonly Setting MaxWorkerLifetimeJitter = new()
    {
        Name = "max_worker_lifetime_jitter",
        Flags = ["--max-worker-lifetime-jitter"],
        Type = SettingType.Seconds,
        Section = "Worker processes",
        Default = 0.0,
        Help = "A random 0..N seconds added to --max-worker-lifetime per worker, so that workers started together do not come due together: each lives between the lifetime and the lifetime plus N (any N >= 0 works; a third of the lifetime spreads 3-4 workers well). Ignored without --max-worker-lifetime.",
    };

    public static readonly Setting MaxRecycleCpu = new()
    {
        Name = "max_recycle_cpu",
        Flags = ["--max-recycle-cpu"],
        Type = SettingType.Int,
        Section = "Worker processes",
        Default = 10L,
        Min = 0,
        Max = 100,
        Help = "The largest share (percent of all the host's cores) of CPU that --max-worker-lifetime recycling may spend on booting successors, judged from what the latest boots cost (boot and warm-up, read from /proc at ready). Above it, the next lifetime recycle is postponed so that boots come no more often than this share allows, and corral logs why once (\"Recycling stretched\"). 0: no cap.",
    };

    public static readonly Setting SpareWorkers = new()
    {
        Name = "spare_workers",
        Flags = ["--spare-workers"],
        Type = SettingType.Int,
        Section = "Worker processes",
        Default = 0L,
        Min = 0,
        Max = 64,
        Help = "Keep this many spare workers booted, warmed up (--warmup-requests) and idle beside the -w serving ones (0: none). A spare takes no connection until the master promotes it (SIGUSR2), which it does at once when a serving worker dies (crash, SIGKILL, out of memory, timeout), when one is recycled (--max-requests, --max-worker-lifetime, memory, a hung request: it drains at once instead of waiting for a successor to boot) and when the count grows (TTIN, corral ctl add); then a new spare boots. Spares boot after the serving workers are ready; each costs the memory of one idle worker. See docs/deployment.md, \"Capacity\".",
    };

    public static readonly Setting WarmupRequests = new()
    {
        Name = "warmup_requests",
        Flags = ["--warmup-requests"],
        Type = SettingType.Int,
        Section = "Worker processes",
        Default = 0L,
        Min = 0,
        Max = 1_000_000,
        Help = "Before a new worker reports ready, it serves this many GET requests for --warmup-path in memory, one after another (0: none), while the old workers still serve: its first real request no longer pays for compiling that path and the app's first-request set-up (SeedApp's /: 71 ms, 9 ms with 100). They are not counted, logged or seen by --max-requests. The warm-up stops at half of --timeout. See docs/deployment.md, \"Warm-up\".",
    };

    public static readonly Setting WarmupPath = new()
    {
        Name = "warmup_path",
        Flags = ["--warmup-path"],
        Type = SettingType.List,
        Section = "Worker processes",
        Default = new List<string> { "/" },
        Help = "A path (and query) the warm-up requests ask for; repeat for several, which the requests take in turn. Cheap pages without side effects that run the code real requests run.",
        AcceptedOverride = "a path starting with /, without spaces",
        Validate = v => v is not string path || !path.StartsWith('/') ? "it does not start with /"
            : path.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)) ? "it holds a space or a control character" : null,
    };

    public static readonly Setting Timeout = new()
    {
        Name = "timeout",
        Flags = ["-t", "--timeout"],
        Type = SettingType.Seconds,
        Section = "Worker processes",
        Default = 30.0,
        Help = "A worker silent for this long (no heartbeat: its thread pool is starved or deadlocked), or not booted within it, is killed (SIGABRT, then SIGKILL) and replaced. With -k sync, a request running longer is treated the same way. 0 disables.",
    };

    public static readonly Setting RequestTimeout = new()
    {
        Name = "request_timeout",
        Flags = ["--request-timeout"],
        Type = SettingType.Seconds,
        Section = "Worker processes",
        Default = 0.0,
        Help = "A deadline for every request, in every worker class (0: none, the default). At the deadline the request's HttpContext.RequestAborted fires, so an app that passes it on stops, and a response not yet started is answered 504 (application/problem+json). A request whose code still runs --request-timeout-grace later is hung: it is answered 504 (or its connection closed), the master logs the request, starts the worker's successor, lets the worker's other requests finish (draining), and kills it at --graceful-timeout. See docs/deployment.md, \"Keeping workers healthy\".",
    };

    public static readonly Setting RequestTimeoutGrace = new()
    {
        Name = "request_timeout_grace",
        Flags = ["--request-timeout-grace"],
        Type = SettingType.Seconds,
        Section = "Worker processes",
        Default = 3.0,
        Help = "With --request-timeout: how long a request's code may still run after its deadline (time to see the cancelled token and unwind) before the worker is hung for it and replaced. Long enough for the app's slowest cancellation (a database driver's round trip to cancel a query), short enough that a stuck thread is not kept.",
    };

    public static readonly Setting GracefulTimeout = new()
    {
        Name = "graceful_timeout",
        Flags = ["--graceful-timeout"],
        Type = SettingType.Seconds,
        Section = "Worker processes",
        Default = 30.0,
        Help = "How long a stopping worker may take to finish its in-flight requests before it is killed.",
    };

    public static readonly Setting KeepAlive = new()
    {
        Name = "keepalive",
        Flags = ["--keep-alive"],
        Type = SettingType.Seconds,
        Section = "Worker processes",
        Default = 2.0,
        Help = "Seconds an idle keep-alive connection is kept open (gthread and async; sync closes every connection after its response). In every class, also how long a new connection may send nothing before it is closed.",
    };

    public static readonly Setting ReloadStrategy = new()
    {
        Name = "reload_strategy",
        Flags = ["--reload-strategy"],
        Type = SettingType.Choice,
        Choices = ["all", "rolling"],
        Section = "Worker processes",
        Default = "all",
        Help = "How HUP (and --reload) replaces the workers. all: every new worker boots, and once all are ready the old ones drain (capacity doubles for a moment). rolling: one new worker at a time, each old one drains once its replacement is ready (at most one extra process). Either way, never fewer than --workers ready.",
    };

    public static readonly Setting Gc = new()
    {
        Name = "gc",
        Flags = ["--gc"],
        Type = SettingType.Choice,
        Choices = ["workstation", "server", "app"],
        Section = "Worker processes",
        Default = DefaultGc,
        Help = "The workers' garbage collector. workstation: one heap per process (the default: N server-GC workers would each size heaps for every core; see bench/results/gc.md). server: the ASP.NET Core default. app: whatever the app's runtimeconfig says.",
    };

    public static readonly Setting JitProfile = new()
    {
        Name = "jit_profile",
        Flags = ["--jit-profile"],
        Type = SettingType.Choice,
        Choices = ["on", "off"],
        Section = "Worker processes",
        Default = "off",
        Help = "on: each worker replays the app's multicore JIT profile (System.Runtime.ProfileOptimization: the methods earlier workers compiled are compiled again on a background thread while it boots) and, at a graceful exit, leaves its own for the next worker. The profile lives in the master's private folder (removed at its exit), one per app. off (the default): none; measured, the profile did not make a worker's boot or warm-up use less CPU (bench/results/cheaper-boots.md): it moves compiling to another thread, which helps a boot's wall-clock time on idle cores, not its cost. Native AOT apps compile nothing; the setting changes nothing for them.",
    };

    public static readonly Setting BootNice = new()
    {
        Name = "boot_nice",
        Flags = ["--boot-nice"],
        Type = SettingType.Int,
        Section = "Worker processes",
        Default = 0L,
        Min = 0,
        Max = 19,
        Help = "A booting worker runs at this much lower CPU priority (nice) than the master, every thread of it, until it reports ready (10 is a start): workers that serve keep the CPU while new ones start (HUP, recycling), and a new worker takes longer to be ready on a busy machine (mind --timeout, which bounds a boot). Only where corral may then raise the worker's priority back (as root, with CAP_SYS_NICE or a high enough RLIMIT_NICE); otherwise workers boot at the master's priority (said at debug level). 0 (the default): off. It moves CPU between workers; it does not make a boot cheaper (docs/deployment.md).",
    };

    public static readonly Setting LimitRequestLine = new()
    {
        Name = "limit_request_line",
        Flags = ["--limit-request-line"],
        Type = SettingType.Int,
        Section = "Security",
        Default = 4094L,
        Min = 0,
        Max = 8190,
        Help = "The longest request line accepted, in bytes (0: no limit of corral's). Longer: 414.",
    };

    public static readonly Setting LimitRequestFields = new()
    {
        Name = "limit_request_fields",
        Flags = ["--limit-request-fields"],
        Type = SettingType.Int,
        Section = "Security",
        Default = 100L,
        Min = 0,
        Max = 32768,
        Help = "The most header fields a request may have (0: no limit of corral's). More: 431.",
    };

    public static readonly Setting LimitRequestFieldSize = new()
    {
        Name = "limit_request_field_size",
        Flags = ["--limit-request-field_size"],
        Type = SettingType.Int,
        Section = "Security",
        Default = 8190L,
        Min = 0,
        Help = "The largest header field (name, ': ' and value) accepted, in bytes (0: no limit of corral's). Larger: 431, and the connection is closed.",
    };

    public static readonly Setting LimitRequestHeadersSize = new()
    {
        Name = "limit_request_headers_size",
        Flags = ["--limit-request-headers-size"],
        Type = SettingType.Int,
        Section = "Security",
        Default = 65536L,
        Min = 1024,
        Max = 16 * 1024 * 1024,
        Help = "The most bytes all of a request's header fields may take together (Kestrel's MaxRequestHeadersTotalSize; the request line is apart). More: 431, and the connection is closed, as soon as that much has arrived: a connection that never ends its header holds at most this much of the worker's memory. Not a Gunicorn setting: Gunicorn bounds the total only by limit_request_fields x limit_request_field_size (about 800 KB), which its sync worker holds for one connection at a time; a corral worker of any class holds many unfinished heads at once and would hold that much for each (400 such connections cost one worker 600 MB). Raise it with limit_request_field_size if single fields that large must pass.",
    };

    public static readonly Setting Config = new()
    {
        Name = "config",
        Flags = ["-c", "--config"],
        Type = SettingType.String,
        Section = "Config file",
        CommandLineOnly = true,
        Help = "A JSON file of settings, keyed by the settings' names, which docs/settings.md and --print-config list ({\"workers\": 4, \"bind\": [\"unix:/run/app.sock\"]}). Re-read on HUP. Precedence: defaults < config file < CORRAL_CMD_ARGS < command line.",
        AcceptedOverride = "a path to a JSON file",
    };

    public static readonly Setting PrintConfig = new()
    {
        Name = "print_config",
        Flags = ["--print-config"],
        Type = SettingType.Bool,
        Section = "Config file",
        Default = false,
        CommandLineOnly = true,
        Help = "Print the resolved settings and exit.",
    };

    public static readonly Setting CheckConfig = new()
    {
        Name = "check_config",
        Flags = ["--check-config"],
        Type = SettingType.Bool,
        Section = "Config file",
        Default = false,
        CommandLineOnly = true,
        Help = "Check the settings, the files they name (the folders of the log files, the pid file and the unix sockets exist and can be written; a socket path fits the kernel's 108 bytes) and the app (it exists and, unless it is a project, which is not built, its runtimeconfig.json says corral can run it), then exit: 0 if valid, 2 if not, with the same one line the start would give.",
    };

    public static readonly Setting Reload = new()
    {
        Name = "reload",
        Flags = ["--reload"],
        Type = SettingType.Bool,
        Section = "Debugging",
        Default = false,
        Help = "The development server (Werkzeug's role): APP must be a project; corral builds it (Debug), serves it, watches its sources (.cs, .csproj, .json, .cshtml, .razor, .props, .targets) and --reload-extra-file, and on a change rebuilds and replaces the workers gracefully. A failed build keeps the old workers serving and prints the compiler errors. Implies --log-level debug and ASPNETCORE_ENVIRONMENT=Development unless set. Not for production.",
    };

    public static readonly Setting ReloadExtraFiles = new()
    {
        Name = "reload_extra_files",
        Flags = ["--reload-extra-file"],
        Type = SettingType.List,
        Section = "Debugging",
        Default = new List<string>(),
        Help = "A further file (or folder) whose changes trigger a rebuild with --reload; repeat for several.",
        AcceptedOverride = "a file or folder path",
    };

    public static readonly Setting Chdir = new()
    {
        Name = "chdir",
        Flags = ["--chdir"],
        Type = SettingType.String,
        Section = "Server mechanics",
        Help = "Change to this directory before anything else (relative paths, the app, files are then taken from there).",
        AcceptedOverride = "an existing directory",
        Validate = v => Directory.Exists((string)v) ? null : "no such directory",
    };

    public static readonly Setting Umask = new()
    {
        Name = "umask",
        Flags = ["-m", "--umask"],
        Type = SettingType.String,
        Section = "Server mechanics",
        Default = "0",
        Help = "The mask a unix socket of --bind is created under, as Gunicorn: with the default 0 the socket is mode 0777 (srwxrwxrwx), so a proxy running as another user (nginx as www-data) can connect; the socket's folder decides who reaches it. 007 keeps it to the owner and the group (0770), 077 to the owner. A value other than 0 is also the file mode creation mask of the master and the workers from the start on (the files they and the app create); 0 leaves theirs as it was inherited.",
        AcceptedOverride = "an octal number such as 022 or 0o22",
        Validate = v => ParseUmask((string)v) is null ? "expected an octal number such as 022 or 0o22" : null,
    };

    public static readonly Setting ReusePort = new()
    {
        Name = "reuse_port",
        Flags = ["--reuse-port"],
        Type = SettingType.Bool,
        Section = "Server mechanics",
        Default = false,
        Help = "Set SO_REUSEPORT on the TCP sockets corral binds, as Gunicorn: another process that sets it too (a second corral with --reuse-port, run by the same user) can then bind the same address and port, and the kernel spreads new connections over both, e.g. to run an old and a new deployment side by side. Without it, a second corral on the port fails with \"Connection in use\". Unix sockets and inherited sockets (systemd, fd://N) are left as they are.",
    };

    public static readonly Setting User = new()
    {
        Name = "user",
        Flags = ["-u", "--user"],
        Type = SettingType.String,
        Section = "Server mechanics",
        Help = "Switch the worker processes to this user (a name, or a numeric uid), as Gunicorn's: the master stays who started it (root, to bind ports below 1024 and to re-bind on USR2) and never runs app code; each worker switches (supplementary groups, group, user) before the app's Main, or fails to boot. Its group is --group, else the user's own; its supplementary groups are the user's (Gunicorn's --initgroups, always). The master hands the log files and unix sockets over to it. An unknown user, or another user when corral is not root, stops corral before it starts (exit 2). See docs/deployment.md, \"Running as another user\".",
        AcceptedOverride = "a user name or a numeric uid",
        Validate = v => WorkerIdentity.CheckUser((string)v),
    };

    public static readonly Setting Group = new()
    {
        Name = "group",
        Flags = ["-g", "--group"],
        Type = SettingType.String,
        Section = "Server mechanics",
        Help = "Switch the worker processes to this group (a name, or a numeric gid). Default: the --user's own group (Gunicorn keeps the master's, root's). An unknown group, or another group when corral is not root, stops corral before it starts (exit 2).",
        AcceptedOverride = "a group name or a numeric gid",
        Validate = v => WorkerIdentity.CheckGroup((string)v),
    };

    public static readonly Setting PidFile = new()
    {
        Name = "pidfile",
        Flags = ["-p", "--pid"],
        Type = SettingType.String,
        Section = "Server mechanics",
        Help = "Write the master's pid to this file at start; it is removed at exit. A pid file that names a running corral stops this one before it touches anything (exit 1, \"Already running on PID N\", as Gunicorn); a stale one (its process gone, or a process that is not corral) is replaced. It is written to a temp file renamed into place (mode 0644): a symlink at the name is replaced, never written through; its folder must exist and be writable (exit 2 otherwise).",
        AcceptedOverride = "a file path",
    };

    public static readonly Setting RawEnv = new()
    {
        Name = "raw_env",
        Flags = ["-e", "--env"],
        Type = SettingType.List,
        Section = "Server mechanics",
        Default = new List<string>(),
        Help = "KEY=VALUE set in every worker's environment; repeat for several (e.g. -e ASPNETCORE_ENVIRONMENT=Production).",
        AcceptedOverride = "KEY=VALUE",
        Validate = v => ((string)v).IndexOf('=') > 0 ? null : "expected KEY=VALUE",
    };

    public static readonly Setting ProcName = new()
    {
        Name = "proc_name",
        Flags = ["-n", "--name"],
        Type = SettingType.String,
        Section = "Process naming",
        Help = "A name for this corral in the process list and the log, as Gunicorn's proc_name (for telling several apart). Without it the master's process name is \"corral: master\" and each worker's \"corral: worker\"; with it, \"NAME: master\" and \"NAME: worker\", the name cut to 7 characters: the kernel keeps 15 (/proc/PID/comm, what ps -e, top, htop's tree and pgrep show). The master's first line names it too: \"Starting corral VERSION (NAME)\". The command line (ps -f, ps aux, pgrep -f) stays as it was: rewriting it needs CAP_SYS_RESOURCE, where Gunicorn's setproctitle rewrites its own argv. The app may rename its process itself.",
        AcceptedOverride = "a name without control characters",
        Validate = v => ((string)v).Any(char.IsControl) ? "it holds a control character" : null,
    };

    public static readonly Setting ControlSocket = new()
    {
        Name = "control_socket",
        Flags = ["--control-socket"],
        Type = SettingType.String,
        Section = "Observability",
        Help = "The unix socket (mode 0600) where `corral ctl` talks to the master: status, add N, remove N, reload, kill PID. Default: the pid file's path with .ctl appended (-p /run/corral.pid: /run/corral.pid.ctl); none without a pid file. A stale socket file there is replaced; one a running master answers on stops this corral before it starts (exit 1). It is removed at exit.",
        AcceptedOverride = "a file path",
    };

    public static readonly Setting MetricsBind = new()
    {
        Name = "metrics_bind",
        Flags = ["--metrics-bind"],
        Type = SettingType.String,
        Section = "Observability",
        Help = "HOST:PORT where the master serves Prometheus metrics (/metrics), the status page (/) and its data (/status.json), on a port of its own, never on the app's listeners. Off by default; keep it on a private address.",
        AcceptedOverride = "HOST:PORT, [IPv6]:PORT or localhost:PORT",
        Validate = v => Metrics.MetricsServer.ParseBind((string)v, out var error) is null ? error : null,
    };

    public static readonly Setting StatsdHost = new()
    {
        Name = "statsd_host",
        Flags = ["--statsd-host"],
        Type = SettingType.String,
        Section = "Observability",
        Help = "Send Gunicorn's statsd metrics (gunicorn.requests, gunicorn.request.duration, gunicorn.request.status.CODE, gunicorn.workers, gunicorn.log.LEVEL) to this statsd server over UDP: HOST:PORT (port 8125 if left out), [IPv6]:PORT, or unix:PATH for a unix datagram socket. The host is resolved once, at start (and at a reload); workers send the request metrics, the master the rest. Off by default. See docs/observability.md.",
        AcceptedOverride = "HOST:PORT, HOST, [IPv6]:PORT or unix:PATH",
        Validate = v => Metrics.StatsdAddress.TryParse((string)v, out _, out var error) ? null : error,
    };

    public static readonly Setting StatsdPrefix = new()
    {
        Name = "statsd_prefix",
        Flags = ["--statsd-prefix"],
        Type = SettingType.String,
        Section = "Observability",
        Help = "A prefix for every statsd metric name; it gets exactly one '.' before the name, as with Gunicorn (app, app. and app.. all send app.gunicorn.requests).",
        AcceptedOverride = "a dotted name without ':', '|', '@', '#' or spaces",
        Validate = v => Agent.Metrics.StatsdFormat.CheckPrefix((string)v),
    };

    public static readonly Setting DogstatsdTags = new()
    {
        Name = "dogstatsd_tags",
        Flags = ["--dogstatsd-tags"],
        Type = SettingType.String,
        Section = "Observability",
        Help = "DogStatsD tags appended to every statsd metric as |#TAGS: comma-separated, e.g. env:prod,app:shop.",
        AcceptedOverride = "comma-separated tags without '|' or spaces, e.g. env:prod,app:shop",
        Validate = v => Agent.Metrics.StatsdFormat.CheckTags((string)v),
    };

    public static readonly Setting AccessLog = new()
    {
        Name = "accesslog",
        Flags = ["--access-logfile"],
        Type = SettingType.String,
        Section = "Logging",
        Help = "Where workers write the access log: a file, or - for stdout. Off by default. A file corral cannot create or write (its folder missing) stops corral before it starts (exit 2), and a reload keeps the old configuration.",
        AcceptedOverride = "a file path or -",
    };

    public static readonly Setting AccessLogFormatSetting = new()
    {
        Name = "access_log_format",
        Flags = ["--access-logformat"],
        Type = SettingType.String,
        Section = "Logging",
        Default = Agent.Logging.AccessLogFormat.GunicornDefault,
        Help = "The access log line, in Gunicorn's atoms: h remote address, l '-', u user, t time, r request line, m method, U path, q query, H protocol, s status, B bytes, b bytes (0, not '-', for an empty body: what Gunicorn really prints), f referer, a user agent, T seconds, M milliseconds, D microseconds, L decimal seconds, p <pid>, {header}i request header, {header}o response header, {variable}e the worker's environment variable (Gunicorn's is the WSGI environ). Unlike Gunicorn, quotes, backslashes and control characters in values are escaped, and an unknown atom is an error rather than '-'.",
        AcceptedOverride = "a format of %(atom)s items",
        Validate = v => Agent.Logging.AccessLogFormat.TryParse((string)v, out _, out var error) ? null : error,
    };

    public static readonly Setting AccessLogJson = new()
    {
        Name = "access_log_json",
        Flags = ["--access-log-json"],
        Type = SettingType.Bool,
        Section = "Logging",
        Default = false,
        Help = "Write each access-log line as one JSON object (OpenTelemetry semantic-convention names: timestamp, http.request.method, url.path, http.response.status_code, client.address, ...; docs/observability.md lists every field) instead of --access-logformat, which is then ignored. Every value is JSON-escaped, so no header or path can forge a field or break the line.",
    };

    public static readonly Setting ErrorLog = new()
    {
        Name = "errorlog",
        Flags = ["--error-logfile", "--log-file"],
        Type = SettingType.String,
        Section = "Logging",
        Default = "-",
        Help = "Where the master and the workers write the error log: a file, or - for stderr. A file corral cannot create or write stops corral before it starts (exit 2).",
        AcceptedOverride = "a file path or -",
    };

    public static readonly Setting LogLevel = new()
    {
        Name = "loglevel",
        Flags = ["--log-level"],
        Type = SettingType.Choice,
        Choices = ["debug", "info", "warning", "error", "critical"],
        Section = "Logging",
        Default = "info",
        Help = "The error log's level.",
    };

    public static readonly Setting ForwardedAllowIps = new()
    {
        Name = "forwarded_allow_ips",
        Flags = ["--forwarded-allow-ips"],
        Type = SettingType.String,
        Section = "Server mechanics",
        Default = Agent.Http.ProxyTrust.DefaultAllowIps,
        EnvVar = "FORWARDED_ALLOW_IPS",
        Help = "Front-end proxies trusted to set X-Forwarded-For and the --secure-scheme-headers: comma-separated IP addresses and CIDR networks, or * for any peer (only when nothing but the proxy can reach corral). From a trusted peer the request's remote address is the right-most X-Forwarded-For address that is not itself trusted, and its scheme is what the scheme headers say; from any other peer those headers are ignored. Unix-socket peers are always trusted, as with Gunicorn. FORWARDED_ALLOW_IPS sets the default.",
        AcceptedOverride = "IP addresses and CIDR networks separated by commas, or *",
        Validate = v => Agent.Http.ProxyTrust.TryParseAllowIps((string)v, out _, out _, out var error) ? null : error,
    };

    public static readonly Setting SecureSchemeHeaders = new()
    {
        Name = "secure_scheme_headers",
        Flags = ["--secure-scheme-headers"],
        Type = SettingType.String,
        Section = "Server mechanics",
        Default = Agent.Http.ProxyTrust.DefaultSecureSchemeHeaders,
        Help = "Headers a trusted front-end proxy (--forwarded-allow-ips) sets to say the request came over TLS, as a JSON object of header name to the value that means https; a present header with another value means http, and two that disagree are answered 400. In a config file, give the object as a JSON string.",
        AcceptedOverride = "a JSON object of strings, e.g. {\"X-FORWARDED-PROTO\": \"https\"}",
        Validate = v => Agent.Http.ProxyTrust.TryParseSchemeHeaders((string)v, out _, out var error) ? null : error,
    };

    public static readonly Setting ProxyProtocol = new()
    {
        Name = "proxy_protocol",
        Flags = ["--proxy-protocol"],
        Type = SettingType.Bool,
        Section = "Server mechanics",
        Default = false,
        Help = "HAProxy's PROXY protocol, v1 (text) and v2 (binary), for a proxy that passes TCP through (HAProxy, nginx's stream module with proxy_protocol on, a cloud load balancer): every connection from a peer in --forwarded-allow-ips (or a unix-socket peer) must start with a PROXY header, whose source address and port become the connection's remote address for the app and the access log; a connection from such a peer without a valid header is closed with a log line. A PROXY header from any other peer is not believed: that connection is closed with a log line; other peers' plain HTTP is served as usual. UNKNOWN (v1) and LOCAL (v2) headers keep the peer's own address.",
    };

    public static readonly Setting HttpProtocols = new()
    {
        Name = "http_protocols",
        Flags = ["--http-protocols"],
        Type = SettingType.String,
        Section = "Server mechanics",
        Help = "The HTTP versions every listener speaks, as Gunicorn's: h1, h2, or h2,h1. Unset: what the app configures for its Kestrel endpoints (Kestrel:EndpointDefaults:Protocols, as `dotnet new grpc` sets Http2; the protocols of its Kestrel:Endpoints when they all agree; ConfigureEndpointDefaults in code), else Kestrel's default (h2,h1). Without TLS, h2 is HTTP/2 by prior knowledge (h2c: gRPC clients, nginx's grpc_pass) and HTTP/1.x requests get 400, while h2,h1 speaks HTTP/1.1 only (Kestrel needs ALPN to offer both); with --certfile, ALPN offers what is given. The master logs once per listener what it speaks and who chose it.",
        AcceptedOverride = Agent.Http.HttpProtocolChoice.Accepted,
        Validate = v => Agent.Http.HttpProtocolChoice.TryParseSetting((string)v, out _, out var error) ? null : error,
    };

    public static readonly Setting CertFile = new()
    {
        Name = "certfile",
        Flags = ["--certfile"],
        Type = SettingType.String,
        Section = "SSL",
        Help = "Serve HTTPS on every listener with this PEM certificate (the chain may follow it); HTTP/2 is offered next to HTTP/1.1 by ALPN (unless the app or --http-protocols asks for one only). Its key comes from --keyfile, or from this file.",
        AcceptedOverride = "a readable PEM certificate file",
        Validate = v => ReadableFile((string)v),
    };

    public static readonly Setting KeyFile = new()
    {
        Name = "keyfile",
        Flags = ["--keyfile"],
        Type = SettingType.String,
        Section = "SSL",
        Help = "The PEM private key of --certfile (PKCS#8, PKCS#1 or SEC1; not encrypted).",
        AcceptedOverride = "a readable PEM key file",
        Validate = v => ReadableFile((string)v),
    };

    public static readonly Setting CaCerts = new()
    {
        Name = "ca_certs",
        Flags = ["--ca-certs"],
        Type = SettingType.String,
        Section = "SSL",
        Help = "A PEM bundle of CA certificates: with it (and --certfile) every client must present a certificate that chains to one of them, or the TLS handshake fails.",
        AcceptedOverride = "a readable PEM file of CA certificates",
        Validate = v => ReadableFile((string)v),
    };

    /// <summary>Checks, before anything starts, that the TLS files load as the workers will load them.</summary>
    public static string? CheckTls(string? certFile, string? keyFile, string? caCerts)
    {
        if (certFile is null)
        {
            return keyFile is not null || caCerts is not null ? "--keyfile and --ca-certs need --certfile" : null;
        }
        try
        {
            Agent.Http.Tls.Check(certFile, keyFile, caCerts);
            return null;
        }
        catch (Agent.Http.TlsException e)
        {
            return e.Message;
        }
    }

    private static string? ReadableFile(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return e is FileNotFoundException or DirectoryNotFoundException ? "no such file" : "cannot read it: " + e.Message;
        }
    }

    /// <summary>All settings, in the order the docs list them.</summary>
    public static readonly IReadOnlyList<Setting> All =
    [
        App, ReadyToRun, Config, PrintConfig, CheckConfig, Reload, ReloadExtraFiles,
        Bind, Backlog,
        Workers, ScaleUpAfter, ScaleDownAfter, ScaleCooldown, WorkerClass, Threads, WorkerConnections, AcceptPolicy, PackLeaderConnections, MaxRequests, MaxRequestsJitter, MaxWorkerMemory, MaxWorkerMemoryCeiling, MaxWorkerLifetime, MaxWorkerLifetimeJitter, MaxRecycleCpu, SpareWorkers, WarmupRequests, WarmupPath, Timeout, RequestTimeout, RequestTimeoutGrace, GracefulTimeout, KeepAlive, ReloadStrategy, Gc, JitProfile, BootNice,
        LimitRequestLine, LimitRequestFields, LimitRequestFieldSize, LimitRequestHeadersSize,
        Chdir, Umask, ReusePort, User, Group, PidFile, RawEnv, ProcName,
        AccessLog, AccessLogFormatSetting, AccessLogJson, ErrorLog, LogLevel,
        ForwardedAllowIps, SecureSchemeHeaders, ProxyProtocol, HttpProtocols,
        CertFile, KeyFile, CaCerts,
        ControlSocket, MetricsBind, StatsdHost, StatsdPrefix, DogstatsdTags,
    ];

    public static Setting? ByName(string name) => All.FirstOrDefault(s => s.Name == name);

    /// <summary>Parses a umask as Gunicorn does: 0o22, 022, 0x12 or decimal; null if unreadable.</summary>
    public static int? ParseUmask(string text)
    {
        text = text.Trim();
        try
        {
            if (text.StartsWith("0o", StringComparison.OrdinalIgnoreCase))
            {
                return Convert.ToInt32(text[2..], 8);
            }
            if (text.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            {
                return Convert.ToInt32(text[2..], 16);
            }
            if (text.Length > 1 && text[0] == '0')
            {
                return Convert.ToInt32(text[1..], 8);
            }
            // Gunicorn's umask is a positive int: a negative one is an error there too.
            return int.Parse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
        {
            return null;
        }
    }
}
