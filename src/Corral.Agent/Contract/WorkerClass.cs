using System.Text.Json.Serialization;

namespace Corral.Agent.Contract;

/// <summary>
/// -k/--worker-class: how a worker takes requests. The rules of each class live in one place,
/// <see cref="Admission.WorkerClassPolicy"/>; on the wire (<see cref="AgentOptions"/>) a class is its name.
/// </summary>
[JsonConverter(typeof(JsonStringEnumConverter<WorkerClass>))]
public enum WorkerClass
{
    /// <summary>One request at a time, every response closes its connection (Gunicorn's sync).</summary>
    [JsonStringEnumMemberName("sync")]
    Sync,

    /// <summary>--threads requests at once, keep-alive (Gunicorn's gthread).</summary>
    [JsonStringEnumMemberName("gthread")]
    Gthread,

    /// <summary>Up to --worker-connections at once (Gunicorn's gevent role). The default.</summary>
    [JsonStringEnumMemberName("async")]
    Async,
}

/// <summary>--accept-policy: which async worker takes a new connection.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<AcceptPolicy>))]
public enum AcceptPolicy
{
    /// <summary>One ready worker takes them all; the others only once the queue has waited (the agent's AcceptPacking).</summary>
    [JsonStringEnumMemberName("pack")]
    Pack,

    /// <summary>Every idle worker accepts and the kernel wakes one.</summary>
    [JsonStringEnumMemberName("kernel")]
    Kernel,
}
