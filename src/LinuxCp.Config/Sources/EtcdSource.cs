using System.Text.Json.Nodes;
using Etcdserverpb;
using Google.Protobuf;
using LinuxCp.Config.Engine;
using Microsoft.Extensions.Logging;

namespace LinuxCp.Config.Sources;

/// <summary>Fleet configuration from etcd: lcpd watches <c>/lcp/&lt;label&gt;/config/...</c> (one
/// item per key, values as JSON, keys as vpp-agent's), applies each change as a transaction of
/// the source "etcd", and writes each key's state under <c>/lcp/&lt;label&gt;/status/...</c>. After
/// a start, a lost watch or a restart of etcd it reads the whole prefix again and makes the
/// source exactly that (what did not change is not touched).</summary>
public sealed partial class EtcdSource : IDisposable
{
    public const string Source = "etcd";

    private readonly ConfigEngine _engine;
    private readonly string _endpoints;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly System.Threading.Channels.Channel<StateChange> _status =
        System.Threading.Channels.Channel.CreateUnbounded<StateChange>(new System.Threading.Channels.UnboundedChannelOptions { SingleReader = true });
    private Task? _loop;
    private Task? _writer;
    private long _resyncs;
    private long _events;

    public EtcdSource(ConfigEngine engine, string endpoints, string label, ILogger log)
    {
        _engine = engine;
        _endpoints = endpoints;
        _log = log;
        Root = $"/lcp/{label}/";
    }

    /// <summary>/lcp/&lt;label&gt;/: config/... holds the items, status/... their states.</summary>
    public string Root { get; }

    public string ConfigPrefix => Root + "config/";

    public string StatusPrefix => Root + "status/";

    public long Resyncs => Interlocked.Read(ref _resyncs);

    public long Events => Interlocked.Read(ref _events);

    /// <summary>Is the watch up (false while etcd cannot be reached)?</summary>
    public bool Connected { get; private set; }

    public void Start()
    {
        _engine.Changed += OnChange;
        _loop = Task.Run(Loop);
        _writer = Task.Run(WriteStatus);
    }

    public void Dispose()
    {
        _engine.Changed -= OnChange;
        _stop.Cancel();
        _status.Writer.TryComplete();
        try
        {
            Task.WaitAll([.. new[] { _loop, _writer }.OfType<Task>()], TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }
        _stop.Dispose();
    }

    /// <summary>The engine key of an etcd key (/lcp/x/config/linux/... -> config/linux/...).</summary>
    public string? EngineKey(string etcdKey) =>
        etcdKey.StartsWith(ConfigPrefix, StringComparison.Ordinal) ? etcdKey[Root.Length..] : null;

    private static string RangeEnd(string prefix)
    {
        byte[] b = System.Text.Encoding.UTF8.GetBytes(prefix);
        b[^1]++;
        return System.Text.Encoding.UTF8.GetString(b);
    }

    private string[] Endpoints => _endpoints.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static Grpc.Net.Client.GrpcChannel Channel(string endpoint) =>
        Grpc.Net.Client.GrpcChannel.ForAddress(endpoint, new Grpc.Net.Client.GrpcChannelOptions { MaxReceiveMessageSize = 64 << 20 });

    /// <summary>Read all, then watch from the next revision on one bidirectional stream; any
    /// failure (etcd down, a compaction, the stream closed) starts over with the next endpoint.</summary>
    private async Task Loop()
    {
        int backoffMs = 250, attempt = 0;
        while (!_stop.IsCancellationRequested)
        {
            string endpoint = Endpoints[attempt++ % Endpoints.Length];
            try
            {
                using var channel = Channel(endpoint);
                var kv = new KV.KVClient(channel);
                RangeResponse all = await kv.RangeAsync(new RangeRequest
                {
                    Key = ByteString.CopyFromUtf8(ConfigPrefix),
                    RangeEnd = ByteString.CopyFromUtf8(RangeEnd(ConfigPrefix)),
                }, deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: _stop.Token);
                var values = all.Kvs.Select(x => (Key: EngineKey(x.Key.ToStringUtf8()), Json: x.Value.ToStringUtf8()))
                    .Where(x => x.Key is not null).Select(x => (x.Key!, x.Json)).ToList();
                TxnResult r = _engine.ReplaceSource(Source, values);
                Interlocked.Increment(ref _resyncs);
                int made = r.Ops.Count(o => o.Result == "ok");
                LogResync(_log, values.Count, all.Header.Revision, r.Outcome, made);
                Connected = true;
                backoffMs = 250;
                attempt--; // stay on the endpoint that answered
                await RepublishStatus(kv);

                var watch = new Watch.WatchClient(channel);
                using var call = watch.Watch(cancellationToken: _stop.Token);
                await call.RequestStream.WriteAsync(new WatchRequest
                {
                    CreateRequest = new WatchCreateRequest
                    {
                        Key = ByteString.CopyFromUtf8(ConfigPrefix),
                        RangeEnd = ByteString.CopyFromUtf8(RangeEnd(ConfigPrefix)),
                        StartRevision = all.Header.Revision + 1,
                        ProgressNotify = true,
                    },
                });
                while (await call.ResponseStream.MoveNext(_stop.Token))
                {
                    WatchResponse w = call.ResponseStream.Current;
                    if (w.Canceled || w.CompactRevision != 0)
                    {
                        LogWatchLost(_log, w.CancelReason.Length != 0 ? w.CancelReason : $"compacted at revision {w.CompactRevision}");
                        break;
                    }
                    foreach (Mvccpb.Event e in w.Events)
                        Apply(e);
                }
                if (!_stop.IsCancellationRequested)
                    LogWatchLost(_log, "the watch stream ended");
            }
            catch (Exception e) when (_stop.IsCancellationRequested && e is OperationCanceledException or Grpc.Core.RpcException)
            {
                break;
            }
            catch (Exception e) when (e is Grpc.Core.RpcException or OperationCanceledException or InvalidOperationException or IOException or System.Net.Http.HttpRequestException)
            {
                if (Connected)
                    LogWatchLost(_log, $"{endpoint}: {e.Message}");
            }
            Connected = false;
            try
            {
                await Task.Delay(backoffMs, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            backoffMs = Math.Min(backoffMs * 2, 5000);
        }
    }

    private void Apply(Mvccpb.Event e)
    {
        string etcdKey = e.Kv.Key.ToStringUtf8();
        if (EngineKey(etcdKey) is not string key)
            return;
        Interlocked.Increment(ref _events);
        try
        {
            if (e.Type == Mvccpb.Event.Types.EventType.Put)
                _engine.Put(Source, key, e.Kv.Value.ToStringUtf8(), new TxnOptions());
            else
                _engine.Delete(Source, [key], new TxnOptions { BestEffort = true }); // keys are independent
        }
        catch (LinuxCp.Config.Model.ConfigException ex)
        {
            LogApplyFailed(_log, etcdKey, ex.Message);
        }
    }

    private void OnChange(StateChange c) => _status.Writer.TryWrite(c);

    /// <summary>Every key's state under status/ (after a resync: the store may have lost them).</summary>
    private async Task RepublishStatus(KV.KVClient kv)
    {
        foreach (ItemStatus s in _engine.Status())
            if (!s.Derived)
                await kv.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8(StatusPrefix + s.Key), Value = ByteString.CopyFromUtf8(StatusJson(s)) },
                    cancellationToken: _stop.Token);
    }

    private static string StatusJson(ItemStatus s) =>
        new JsonObject { ["state"] = s.StateName, ["reason"] = s.Reason, ["source"] = s.Source, ["since"] = s.Since.ToString("O", System.Globalization.CultureInfo.InvariantCulture) }.ToJsonString();

    private async Task WriteStatus()
    {
        Grpc.Net.Client.GrpcChannel? channel = null;
        try
        {
            await foreach (StateChange c in _status.Reader.ReadAllAsync(_stop.Token))
            {
                if (c.Status.Derived)
                    continue;
                for (int attempt = 0; attempt < 3 && !_stop.IsCancellationRequested; attempt++)
                {
                    try
                    {
                        channel ??= Channel(Endpoints[attempt % Endpoints.Length]);
                        var kv = new KV.KVClient(channel);
                        var key = ByteString.CopyFromUtf8(StatusPrefix + c.Status.Key);
                        if (c.Removed)
                            await kv.DeleteRangeAsync(new DeleteRangeRequest { Key = key }, deadline: DateTime.UtcNow.AddSeconds(5), cancellationToken: _stop.Token);
                        else
                            await kv.PutAsync(new PutRequest { Key = key, Value = ByteString.CopyFromUtf8(StatusJson(c.Status)) }, deadline: DateTime.UtcNow.AddSeconds(5), cancellationToken: _stop.Token);
                        break;
                    }
                    catch (Grpc.Core.RpcException)
                    {
                        channel?.Dispose();
                        channel = null;
                        await Task.Delay(500, _stop.Token); // republished whole after the next resync anyway
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            channel?.Dispose();
        }
    }

    [LoggerMessage(EventId = 320, Level = LogLevel.Information, Message = "etcd: {Items} item(s) read at revision {Revision}: {Outcome}, {Ops} operation(s)")]
    private static partial void LogResync(ILogger l, int items, long revision, string outcome, int ops);

    [LoggerMessage(EventId = 321, Level = LogLevel.Warning, Message = "etcd: watch lost ({Why}); reconnecting and reading everything again")]
    private static partial void LogWatchLost(ILogger l, string why);

    [LoggerMessage(EventId = 322, Level = LogLevel.Warning, Message = "etcd: {Key}: {Error}")]
    private static partial void LogApplyFailed(ILogger l, string key, string error);
}
