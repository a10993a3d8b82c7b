using Google.Protobuf;
using Grpc.Core;
using LinuxCp.Config.Engine;
using LinuxCp.Config.Model;
using LinuxCp.Management.Api;
using LinuxCp.Management.Grpc;

namespace LinuxCp.Management.Rest;

/// <summary>gRPC in the shape of vpp-agent's Configurator: Get, Update (with full_resync), Delete,
/// Dump and Notify, on the same engine as lcpctl and REST. Messages cross to the model as
/// protobuf's JSON (original field names), which the document reader takes as it is.</summary>
internal sealed class ConfiguratorGrpc(CommandHandlers handlers) : ConfiguratorService.ConfiguratorServiceBase
{
    public const string Source = "grpc";

    private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithPreserveProtoFieldNames(true));
    private static readonly JsonParser Parser = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(false));

    private ConfigEngine Engine => handlers.Config?.Engine ?? throw new RpcException(new Status(StatusCode.Unavailable, "this lcpd runs without the config layer (--no-config)"));

    private static Grpc.Config ToProto(ConfigDocument d) => Parser.Parse<Grpc.Config>(DocumentWriter.Document(d).ToJsonString());

    private static (ConfigDocument, IReadOnlyDictionary<object, string>) FromProto(Grpc.Config? c)
    {
        string json = c is null ? "{}" : Formatter.Format(c);
        try
        {
            return DocumentReader.Parse(json == "{}" ? "{}" : json);
        }
        catch (ConfigException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
        }
    }

    private static RpcException Refused(TxnResult r) =>
        new(new Status(r.Outcome == "refused" ? StatusCode.InvalidArgument : StatusCode.Aborted,
            r.Errors.Count > 1 ? string.Join("; ", r.Errors) : r.Outcome == "reverted" ? $"transaction failed and was reverted: {r.Error}" : r.Error));

    private static T Guard<T>(Func<T> f)
    {
        try
        {
            return f();
        }
        catch (ConfigException e)
        {
            throw new RpcException(new Status(StatusCode.FailedPrecondition, e.Message));
        }
    }

    public override Task<GetResponse> Get(GetRequest request, ServerCallContext context) =>
        Task.FromResult(new GetResponse { Config = ToProto(Engine.Get()) });

    public override Task<UpdateResponse> Update(UpdateRequest request, ServerCallContext context) => Task.FromResult(Guard(() =>
    {
        var (doc, paths) = FromProto(request.Update);
        TxnResult r = Engine.Update(Source, doc, new TxnOptions { Replace = request.FullResync, BestEffort = request.BestEffort, DryRun = request.DryRun, Paths = paths });
        if (r.Outcome is "refused" or "reverted")
            throw Refused(r);
        var resp = new UpdateResponse { Ok = r.Ok, Outcome = r.Outcome, Error = r.Error, Revision = r.Revision, Seq = r.Seq };
        resp.Ops.AddRange(r.Ops.Select(o => new Operation { Op = o.Op, Key = o.Key, Result = o.Result, Error = o.Error }));
        resp.Pending.AddRange(r.Pending.Where(p => !p.Derived).Select(p => new Pending { Key = p.Key, Reason = p.Reason }));
        return resp;
    }));

    public override Task<DeleteResponse> Delete(DeleteRequest request, ServerCallContext context) => Task.FromResult(Guard(() =>
    {
        var (doc, _) = FromProto(request.Delete);
        var keys = doc.Items().Select(i => i.Key).ToList();
        TxnResult r = Engine.Delete(Source, keys, new TxnOptions());
        if (r.Outcome is "refused" or "reverted")
            throw Refused(r);
        return new DeleteResponse { Ok = r.Ok, Outcome = r.Outcome, Error = r.Error, Revision = r.Revision };
    }));

    private static Grpc.ItemState State(ItemStatus s) => new() { Key = s.Key, State = s.StateName, Reason = s.Reason, Source = s.Source };

    public override Task<DumpResponse> Dump(DumpRequest request, ServerCallContext context)
    {
        ConfigEngine e = Engine;
        var states = e.Status();
        var configured = states.Where(s => s.State == LinuxCp.Config.Engine.ItemState.Configured).Select(s => s.Key).ToHashSet(StringComparer.Ordinal);
        ConfigDocument all = e.Get();
        var items = all.Items().Where(i => configured.Contains(i.Key));
        var resp = new DumpResponse { Dump = ToProto(DocumentWriter.ToDocument(items)) };
        resp.States.AddRange(states.Where(s => !s.Derived).Select(State));
        return Task.FromResult(resp);
    }

    public override async Task Notify(NotifyRequest request, IServerStreamWriter<NotifyResponse> responseStream, ServerCallContext context)
    {
        ConfigEngine e = Engine;
        var queue = System.Threading.Channels.Channel.CreateBounded<StateChange>(new System.Threading.Channels.BoundedChannelOptions(10_000)
        {
            FullMode = System.Threading.Channels.BoundedChannelFullMode.DropWrite,
        });
        void OnChange(StateChange c)
        {
            if (!queue.Writer.TryWrite(c))
                queue.Writer.TryComplete(); // a client that does not read is let go
        }
        e.Changed += OnChange;
        uint idx = request.Idx;
        try
        {
            await foreach (StateChange c in queue.Reader.ReadAllAsync(context.CancellationToken))
            {
                if (c.Status.Derived)
                    continue;
                Grpc.ItemState st = State(c.Status);
                if (c.Removed)
                    st.State = "REMOVED";
                await responseStream.WriteAsync(new NotifyResponse { NextIdx = ++idx, Notification = st }, context.CancellationToken);
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            e.Changed -= OnChange;
        }
    }
}
