using System.Buffers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using LinuxCp.Management.Contracts;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LinuxCp.Management.Api;

/// <summary>The API socket: a unix stream socket (mode 0600) carrying one JSON request per line.
/// Requests are bounded in size (64 KiB) and time (10 s to send a line); malformed ones get an
/// error reply; at most 32 connections are served at once.</summary>
public sealed class ApiServer : BackgroundService
{
    public const int MaxConnections = 32;
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(10);

    private readonly CommandHandlers _handlers;
    private readonly string _path;
    private readonly ILogger _log;
    private readonly SemaphoreSlim _slots = new(MaxConnections);
    private Socket? _listener;
    private long _requests;
    private long _errors;

    public ApiServer(CommandHandlers handlers, string path, ILogger<ApiServer> log)
    {
        _handlers = handlers;
        _path = path;
        _log = log;
    }

    /// <summary>--api-socket-group: this group may use the socket too (mode 0660).</summary>
    public string? Group { get; init; }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int chown([System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string path, int owner, int group);

    /// <summary>A group's id from its name or number (/etc/group); null when there is none.</summary>
    public static int? GroupId(string group)
    {
        if (int.TryParse(group, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int gid))
            return gid;
        foreach (string line in File.ReadLines("/etc/group"))
        {
            string[] f = line.Split(':');
            if (f.Length >= 3 && f[0] == group && int.TryParse(f[2], System.Globalization.CultureInfo.InvariantCulture, out gid))
                return gid;
        }
        return null;
    }

    public long Requests => Interlocked.Read(ref _requests);
    public long Errors => Interlocked.Read(ref _errors);

    /// <summary>Binds the socket (called before the host starts, so a bad path fails start-up).</summary>
    public void Bind()
    {
        string? dir = Path.GetDirectoryName(_path);
        if (!string.IsNullOrEmpty(dir))
            Directory.CreateDirectory(dir);
        if (File.Exists(_path))
        {
            using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(_path));
                throw new IOException($"API socket {_path} is in use by another process (another lcpd?)");
            }
            catch (SocketException)
            {
                File.Delete(_path); // stale socket of a dead process
            }
        }
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Bind(new UnixDomainSocketEndPoint(_path));
        File.SetUnixFileMode(_path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        if (Group is not null)
        {
            int gid = GroupId(Group) ?? throw new IOException($"--api-socket-group {Group}: no such group");
            if (chown(_path, -1, gid) != 0)
                throw new IOException($"--api-socket-group {Group}: cannot give {_path} to it: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
            File.SetUnixFileMode(_path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
        }
        s.Listen(64);
        _listener = s;
        Log.ApiListening(_log, _path);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_listener is null)
            Bind();
        Socket listener = _listener!;
        using var reg = stoppingToken.Register(() => listener.Dispose());
        while (!stoppingToken.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(stoppingToken);
            }
            catch (Exception) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (SocketException e)
            {
                Log.ApiAcceptFailed(_log, e.Message);
                await Task.Delay(100, stoppingToken);
                continue;
            }
            if (!_slots.Wait(0, CancellationToken.None))
            {
                _ = RejectAsync(client);
                continue;
            }
            _ = ServeAsync(client, stoppingToken);
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        try
        {
            File.Delete(_path);
        }
        catch (IOException)
        {
        }
    }

    private static async Task RejectAsync(Socket client)
    {
        using (client)
        {
            byte[] msg = Encoding.UTF8.GetBytes(Protocol.Error("too many API connections") + "\n");
            try
            {
                await client.SendAsync(msg);
            }
            catch (SocketException)
            {
            }
        }
    }

    /// <summary>Where HTTP connections on the API socket are forwarded (the REST server's private
    /// socket); null: the API socket speaks only the JSON-lines protocol.</summary>
    public string? HttpForward { get; set; }

    /// <summary>A connection's request bytes, in a pooled array: a fresh 64 KiB buffer per
    /// connection made every API poll cost a garbage collection's worth of allocation sooner.</summary>
    private sealed class LineBuffer : IDisposable
    {
        public byte[] Buf = System.Buffers.ArrayPool<byte>.Shared.Rent(Protocol.MaxRequestBytes + 1);
        public int Len;
        public CancellationTokenSource? Timeout;

        public void Dispose()
        {
            Timeout?.Dispose();
            byte[] b = Buf;
            Buf = [];
            if (b.Length != 0)
                System.Buffers.ArrayPool<byte>.Shared.Return(b);
        }
    }

    private async Task ServeAsync(Socket client, CancellationToken stop)
    {
        try
        {
            using (client)
            await using (var stream = new NetworkStream(client, ownsSocket: false))
            {
                using var lb = new LineBuffer();
                using (var first = CancellationTokenSource.CreateLinkedTokenSource(stop))
                {
                    first.CancelAfter(RequestTimeout);
                    lb.Len = await stream.ReadAsync(lb.Buf.AsMemory(0, Protocol.MaxRequestBytes + 1), first.Token);
                }
                if (lb.Len == 0)
                    return;
                // A JSON request starts with '{' (or whitespace); an HTTP request with its method.
                if (HttpForward is not null && lb.Buf[0] is >= (byte)'A' and <= (byte)'Z')
                {
                    await ProxyAsync(stream, lb, HttpForward, stop);
                    return;
                }
                var reply = new ArrayBufferWriter<byte>(4096); // the connection's replies, reused
                while (!stop.IsCancellationRequested)
                {
                    string? line = await ReadLineAsync(stream, lb, stop);
                    if (line is null)
                        return;
                    if (_handlers.Config is ConfigCommands cfg && IsWatch(line))
                    {
                        await WatchAsync(stream, cfg, stop);
                        return;
                    }
                    Handle(line, reply);
                    reply.Write("\n"u8);
                    await stream.WriteAsync(reply.WrittenMemory, stop);
                    if (reply.Capacity > 1 << 20)
                        reply = new ArrayBufferWriter<byte>(4096); // not kept after a large dump
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // client went away or timed out
        }
        finally
        {
            _slots.Release();
        }
    }

    private static bool IsWatch(string line)
    {
        try
        {
            return ParseRequest(line) is ["config", "watch"];
        }
        catch (ApiException)
        {
            return false;
        }
    }

    /// <summary>config watch: one reply line per state change of a config key, until the client
    /// goes away. A client that does not read is dropped once 10,000 lines wait for it.</summary>
    private static async Task WatchAsync(NetworkStream stream, ConfigCommands cfg, CancellationToken stop)
    {
        var queue = System.Threading.Channels.Channel.CreateBounded<string>(new System.Threading.Channels.BoundedChannelOptions(10_000)
        {
            FullMode = System.Threading.Channels.BoundedChannelFullMode.DropWrite,
        });
        void OnChange(LinuxCp.Config.Engine.StateChange c)
        {
            var o = new System.Text.Json.Nodes.JsonObject
            {
                ["key"] = c.Status.Key, ["state"] = c.Removed ? "REMOVED" : c.Status.StateName, ["kind"] = c.Status.Kind,
                ["source"] = c.Status.Source, ["reason"] = c.Status.Reason,
                ["time"] = c.Status.Since.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
            };
            if (!queue.Writer.TryWrite(Protocol.Ok(o)))
                queue.Writer.TryComplete();
        }
        cfg.Engine.Changed += OnChange;
        try
        {
            byte[] hello = Encoding.UTF8.GetBytes(Protocol.Ok(new System.Text.Json.Nodes.JsonObject { ["watching"] = true, ["revision"] = cfg.Engine.CurrentRevision }) + "\n");
            await stream.WriteAsync(hello, stop);
            while (await queue.Reader.WaitToReadAsync(stop))
                while (queue.Reader.TryRead(out string? line))
                    await stream.WriteAsync(Encoding.UTF8.GetBytes(line + "\n"), stop);
        }
        finally
        {
            cfg.Engine.Changed -= OnChange;
        }
    }

    /// <summary>Splices an HTTP connection to the REST server; the bytes already read go first.</summary>
    private static async Task ProxyAsync(NetworkStream client, LineBuffer lb, string target, CancellationToken stop)
    {
        using var upstream = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await upstream.ConnectAsync(new UnixDomainSocketEndPoint(target), stop);
        await using var up = new NetworkStream(upstream, ownsSocket: false);
        await up.WriteAsync(lb.Buf.AsMemory(0, lb.Len), stop);
        using var done = CancellationTokenSource.CreateLinkedTokenSource(stop);
        Task a = client.CopyToAsync(up, done.Token);
        Task b = up.CopyToAsync(client, done.Token);
        await Task.WhenAny(a, b);
        done.Cancel();
        try
        {
            upstream.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }
    }

    /// <summary>Reads one '\n'-terminated line within the time and size limits, keeping any bytes
    /// after it for the next call. Null at EOF. An oversized or slow request throws (the
    /// connection is closed after an error reply).</summary>
    private static async Task<string?> ReadLineAsync(NetworkStream stream, LineBuffer lb, CancellationToken stop)
    {
        byte[] buf = lb.Buf;
        // One timer per connection, re-armed per line (a source and a timer per request would
        // be garbage on every poll); once it fires the connection is closed.
        CancellationTokenSource timeout = lb.Timeout ??= CancellationTokenSource.CreateLinkedTokenSource(stop);
        timeout.CancelAfter(RequestTimeout);
        while (true)
        {
            int nl = Array.IndexOf(buf, (byte)'\n', 0, lb.Len);
            if (nl >= 0)
            {
                timeout.CancelAfter(Timeout.Infinite); // the limit is on reading; a slow command is not cut off
                string line = Encoding.UTF8.GetString(buf, 0, nl);
                Buffer.BlockCopy(buf, nl + 1, buf, 0, lb.Len - nl - 1);
                lb.Len -= nl + 1;
                return line;
            }
            if (lb.Len == buf.Length && lb.Len < Protocol.MaxDocumentRequestBytes && IsConfigRequest(buf))
            {
                // A config command carrying a document may exceed the usual bound: grow.
                byte[] bigger = System.Buffers.ArrayPool<byte>.Shared.Rent(Math.Min(buf.Length * 2, Protocol.MaxDocumentRequestBytes + 1));
                Buffer.BlockCopy(buf, 0, bigger, 0, lb.Len);
                System.Buffers.ArrayPool<byte>.Shared.Return(buf);
                lb.Buf = buf = bigger;
            }
            else if (lb.Len >= Protocol.MaxRequestBytes && !(IsConfigRequest(buf) && lb.Len < Protocol.MaxDocumentRequestBytes))
            {
                byte[] err = Encoding.UTF8.GetBytes(Protocol.Error($"request larger than {Protocol.MaxRequestBytes} bytes") + "\n");
                await stream.WriteAsync(err, stop);
                throw new IOException("request too large");
            }
            int n = await stream.ReadAsync(buf.AsMemory(lb.Len, Math.Min(buf.Length, Protocol.MaxDocumentRequestBytes + 1) - lb.Len), timeout.Token);
            if (n == 0)
            {
                timeout.CancelAfter(Timeout.Infinite);
                if (lb.Len == 0)
                    return null;
                string rest = Encoding.UTF8.GetString(buf, 0, lb.Len);
                lb.Len = 0;
                return rest;
            }
            lb.Len += n;
        }
    }

    /// <summary>Does this request (its first bytes) name a config command? Only those may carry a
    /// document larger than <see cref="Protocol.MaxRequestBytes"/>.</summary>
    private static bool IsConfigRequest(byte[] buf)
    {
        ReadOnlySpan<byte> head = buf.AsSpan(0, Math.Min(buf.Length, 128));
        return head.Length != 0 && head[0] == (byte)'{' && head.IndexOf("\"argv\":[\"config\""u8) >= 0;
    }

    /// <summary>Parses and executes one request line; always returns a reply line.</summary>
    public string Handle(string line)
    {
        var output = new ArrayBufferWriter<byte>();
        Handle(line, output);
        return Encoding.UTF8.GetString(output.WrittenSpan);
    }

    /// <summary>Parses and executes one request line, writing the reply (without its line end)
    /// into <paramref name="output"/>, which it empties first.</summary>
    public void Handle(string line, ArrayBufferWriter<byte> output)
    {
        Interlocked.Increment(ref _requests);
        string[]? argv = null;
        string error;
        try
        {
            argv = ParseRequest(line, out string? input);
            object? result = _handlers.Run(argv, input, "cli");
            output.ResetWrittenCount();
            Protocol.WriteOk(output, result);
            if (CommandCatalog.ChangesState(argv))
                Log.ApiCommandAudit(_log, string.Join(' ', argv), "ok");
            return;
        }
        catch (ApiException e)
        {
            Interlocked.Increment(ref _errors);
            if (argv is not null && CommandCatalog.ChangesState(argv))
                Log.ApiCommandAudit(_log, string.Join(' ', argv), $"error: {e.Message}");
            error = Protocol.Error(e.Message);
        }
        catch (Exception e)
        {
            Interlocked.Increment(ref _errors);
            Log.ApiHandlerFailed(_log, e);
            error = Protocol.Error($"internal error: {e.Message}");
        }
        output.ResetWrittenCount(); // (a reply that failed half-way is not sent)
        Encoding.UTF8.GetBytes(error, output);
    }

    internal static string[] ParseRequest(string line) => ParseRequest(line, out _);

    /// <summary>The request's argv, and its input (a config document) when it carries one.</summary>
    internal static string[] ParseRequest(string line, out string? input)
    {
        input = null;
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(line, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException e)
        {
            throw new ApiException($"malformed request: {e.Message}");
        }
        using (doc)
        {
            JsonElement root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new ApiException("malformed request: expected a JSON object");
            if (!root.TryGetProperty("v", out JsonElement v) || v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int ver))
                throw new ApiException("malformed request: missing protocol version \"v\"");
            if (ver != Protocol.Version)
                throw new ApiException($"unsupported protocol version {ver} (this lcpd speaks {Protocol.Version})");
            if (!root.TryGetProperty("argv", out JsonElement argv) || argv.ValueKind != JsonValueKind.Array)
                throw new ApiException("malformed request: missing \"argv\" array");
            if (argv.GetArrayLength() > 64)
                throw new ApiException("malformed request: too many arguments");
            if (root.TryGetProperty("input", out JsonElement inp))
            {
                if (inp.ValueKind != JsonValueKind.String)
                    throw new ApiException("malformed request: \"input\" must be a string (the document)");
                input = inp.GetString();
            }
            var list = new string[argv.GetArrayLength()];
            int i = 0;
            foreach (JsonElement a in argv.EnumerateArray())
            {
                if (a.ValueKind != JsonValueKind.String)
                    throw new ApiException("malformed request: arguments must be strings");
                list[i++] = a.GetString()!;
            }
            return list;
        }
    }
}
