using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace LinuxCp.Management.Contracts;

/// <summary>The API socket protocol, version 1: one JSON object per line each way.
/// Request: <c>{"v":1,"argv":["show","interfaces"]}</c>.
/// Reply: <c>{"v":1,"ok":true,"result":...}</c> or <c>{"v":1,"ok":false,"error":"..."}</c>.</summary>
public static class Protocol
{
    public const int Version = 1;
    public const int MaxRequestBytes = 64 * 1024;
    /// <summary>A config command's request may carry a document up to this size (JSON-escaped).</summary>
    public const int MaxDocumentRequestBytes = 12 << 20;
    public const string DefaultSocket = "/run/lcpd.sock";

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        WriteIndented = false,
    };

    public static string Request(IEnumerable<string> argv) => Request(argv, null);

    /// <summary>A request carrying a document (config update -f): the text goes as it is.</summary>
    public static string Request(IEnumerable<string> argv, string? input)
    {
        var o = new JsonObject { ["v"] = Version, ["argv"] = new JsonArray([.. argv.Select(a => (JsonNode)a)]) };
        if (input is not null)
            o["input"] = input;
        return o.ToJsonString();
    }

    /// <summary>Writes an ok reply for a command's result object straight into
    /// <paramref name="output"/>: the same text as <see cref="Ok"/> gives for that result
    /// serialised to a node, without the node tree, the string and its copy to bytes (a monitor
    /// polling every 100 ms would otherwise keep the garbage collector busy, and a collection
    /// pauses the workers).</summary>
    public static void WriteOk(IBufferWriter<byte> output, object? result)
    {
        Utf8JsonWriter w = t_writer ??= new Utf8JsonWriter(output);
        w.Reset(output);
        w.WriteStartObject();
        w.WriteNumber("v", Version);
        w.WriteBoolean("ok", true);
        w.WritePropertyName("result");
        if (result is JsonNode node)
            node.WriteTo(w, Json);
        else
            JsonSerializer.Serialize(w, result, result?.GetType() ?? typeof(object), Json);
        w.WriteEndObject();
        w.Flush();
        w.Reset(Detached); // holds no reference to the caller's buffer between replies
    }

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    // Reset(Stream) would allocate a buffer on every reply; resetting onto this one does not.
    private static readonly ArrayBufferWriter<byte> Detached = new(1);

    public static string Ok(JsonNode? result) =>
        new JsonObject { ["v"] = Version, ["ok"] = true, ["result"] = result }.ToJsonString();

    public static string Error(string message) =>
        new JsonObject { ["v"] = Version, ["ok"] = false, ["error"] = message }.ToJsonString();
}

/// <summary>An error reply: the request was understood but cannot be done, or was malformed.</summary>
public sealed class ApiException : Exception
{
    public ApiException(string message) : base(message) { }

    public ApiException() { }

    public ApiException(string message, Exception inner) : base(message, inner) { }
}
