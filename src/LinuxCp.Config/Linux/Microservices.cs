using System.Net.Sockets;
using System.Text.Json.Nodes;

namespace LinuxCp.Config.Linux;

/// <summary>Resolves a MICROSERVICE namespace reference the way vpp-agent does: the container
/// whose environment holds MICROSERVICE_LABEL=&lt;label&gt;, asked of the container runtime's
/// Docker-compatible API socket; its network namespace is that of the container's first process.</summary>
public sealed class Microservices(string socket = Microservices.DefaultSocket)
{
    public const string DefaultSocket = "/var/run/docker.sock";
    public const string LabelVariable = "MICROSERVICE_LABEL";

    /// <summary>The PID of the container labelled <paramref name="label"/>, or 0 with the reason.</summary>
    public (int Pid, string Reason) Resolve(string label)
    {
        if (!File.Exists(socket))
            return (0, $"no container runtime socket at {socket}");
        try
        {
            using var http = Client();
            JsonNode? list = JsonNode.Parse(http.GetStringAsync(new Uri("http://runtime/containers/json")).GetAwaiter().GetResult());
            foreach (string id in ContainerIds(list))
            {
                JsonNode? c = JsonNode.Parse(http.GetStringAsync(new Uri($"http://runtime/containers/{id}/json")).GetAwaiter().GetResult());
                if (LabelOf(c) == label)
                    return PidOf(c) is int pid and > 0 ? (pid, "") : (0, $"container {id} labelled {label} is not running");
            }
            return (0, $"no running container has {LabelVariable}={label}");
        }
        catch (Exception e) when (e is HttpRequestException or SocketException or IOException or System.Text.Json.JsonException or TaskCanceledException)
        {
            return (0, $"container runtime at {socket}: {e.Message}");
        }
    }

    private HttpClient Client()
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await s.ConnectAsync(new UnixDomainSocketEndPoint(socket), ct);
                return new NetworkStream(s, ownsSocket: true);
            },
        };
        return new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(5) };
    }

    /// <summary>Ids from GET /containers/json (running containers).</summary>
    public static IEnumerable<string> ContainerIds(JsonNode? list) =>
        list is JsonArray a ? a.Select(c => c?["Id"]?.GetValue<string>()).OfType<string>().Where(id => id.All(char.IsAsciiLetterOrDigit)) : [];

    /// <summary>The MICROSERVICE_LABEL of a container from GET /containers/{id}/json.</summary>
    public static string? LabelOf(JsonNode? container)
    {
        if (container?["Config"]?["Env"] is not JsonArray env)
            return null;
        foreach (JsonNode? e in env)
            if (e?.GetValue<string>() is string s && s.StartsWith(LabelVariable + "=", StringComparison.Ordinal))
                return s[(LabelVariable.Length + 1)..];
        return null;
    }

    public static int? PidOf(JsonNode? container) =>
        container?["State"]?["Running"]?.GetValue<bool>() == true ? container["State"]?["Pid"]?.GetValue<int>() : null;
}
