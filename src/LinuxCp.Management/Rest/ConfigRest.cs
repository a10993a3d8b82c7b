using System.Globalization;
using System.Text.Json.Nodes;
using LinuxCp.Config.Engine;
using LinuxCp.Config.Model;
using LinuxCp.Management.Api;
using LinuxCp.Management.Contracts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;

namespace LinuxCp.Management.Rest;

/// <summary>REST for the config layer, straight onto the engine: /api/v1/config/... (documents
/// as request bodies, JSON or YAML), and vpp-agent's read-only /dump/linux/v2/... views.</summary>
internal static class ConfigRest
{
    private const string Prefix = "/api/v1/config";

    private static IResult Json(JsonNode? n, int status = 200) => Results.Text(n?.ToJsonString() ?? "null", "application/json", statusCode: status);

    private static IResult Error(string message, int status = 400) => Results.Json(new ErrorDto(message), statusCode: status);

    private static IResult Guard(CommandHandlers h, Func<ConfigCommands, IResult> f)
    {
        if (h.Config is not ConfigCommands c)
            return Error("this lcpd runs without the config layer (--no-config)", 404);
        try
        {
            return f(c);
        }
        catch (ConfigException e)
        {
            return Error(e.Message);
        }
        catch (ApiException e)
        {
            return Error(e.Message);
        }
    }

    private static async Task<string> Body(HttpContext c)
    {
        if (c.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } f)
            f.MaxRequestBodySize = DocumentReader.MaxDocumentBytes;
        using var r = new StreamReader(c.Request.Body);
        return await r.ReadToEndAsync(c.RequestAborted);
    }

    private static bool Flag(HttpContext c, string name) =>
        c.Request.Query[name].ToString() is "1" or "true" or "yes";

    private static int Seconds(HttpContext c, string name) =>
        int.TryParse(c.Request.Query[name].ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out int s) ? s : 0;

    private static string Source(HttpContext c) => c.Connection.LocalIpAddress is null ? "rest" : "rest-tcp";

    public static void Map(WebApplication app, CommandHandlers h)
    {
        app.MapGet(Prefix, (HttpContext c) => Guard(h, cfg => Json(DocumentWriter.Document(cfg.Engine.Get(c.Request.Query["source"].ToString() is { Length: > 0 } s ? s : null)))))
            .WithSummary("the desired configuration (vpp-agent's Config shape plus lcp_config)");
        app.MapPost(Prefix, async (HttpContext c) =>
        {
            string body = await Body(c);
            return Guard(h, cfg =>
            {
                var (doc, paths) = DocumentReader.Parse(body);
                var o = new TxnOptions
                {
                    Replace = Flag(c, "replace"), DryRun = Flag(c, "dry_run"), BestEffort = Flag(c, "best_effort"),
                    ConfirmSeconds = Seconds(c, "confirm"), Paths = paths,
                };
                return Json(ConfigCommands.Txn(cfg.Engine.Update(Source(c), doc, o)));
            });
        }).WithSummary("apply a document (JSON or YAML body) as one transaction; ?replace=1&dry_run=1&best_effort=1&confirm=<s>");
        app.MapPost(Prefix + "/validate", async (HttpContext c) =>
        {
            string body = await Body(c);
            return Guard(h, cfg =>
            {
                var (doc, paths) = DocumentReader.Parse(body);
                TxnResult r = cfg.Engine.Update(Source(c), doc, new TxnOptions { DryRun = true, Paths = paths });
                return r.Ok ? Json(new JsonObject { ["valid"] = true, ["items"] = doc.Count, ["planned"] = r.Ops.Count })
                    : Error(r.Errors.Count != 0 ? string.Join("; ", r.Errors) : r.Error);
            });
        }).WithSummary("check and plan a document without changing anything");
        app.MapPut(Prefix + "/item/{**key}", async (HttpContext c, string key) =>
        {
            string body = await Body(c);
            return Guard(h, cfg => Json(ConfigCommands.Txn(cfg.Engine.Put(Source(c), key, body, new TxnOptions()))));
        }).WithSummary("put one item under its key (config/linux/interfaces/v2/interface/<name>, ...), as a KV store would");
        app.MapDelete(Prefix + "/item/{**key}", (HttpContext c, string key) =>
            Guard(h, cfg => Json(ConfigCommands.Txn(cfg.Engine.Delete(Source(c), [key], new TxnOptions { DryRun = Flag(c, "dry_run") })))))
            .WithSummary("delete an item by key (a key ending in '/' deletes everything under it)");
        app.MapGet(Prefix + "/status", (HttpContext c) => Guard(h, cfg =>
            Json(cfg.Execute(CommandCatalog.Match(["config", "status"], out _)!, c.Request.Query["prefix"].ToString() is { Length: > 0 } p ? [p] : [], null, Source(c)))))
            .WithSummary("state of each key (?prefix=)");
        app.MapGet(Prefix + "/history", (HttpContext c) => Guard(h, cfg =>
            Json(cfg.Execute(CommandCatalog.Match(["config", "history"], out _)!, Flag(c, "details") ? ["--details"] : [], null, Source(c)))))
            .WithSummary("transactions (?details=1)");
        app.MapGet(Prefix + "/history/{seq}", (HttpContext c, string seq) => Guard(h, cfg =>
            Json(cfg.Execute(CommandCatalog.Match(["config", "history"], out _)!, [seq], null, Source(c)))))
            .WithSummary("one transaction with its input and operations");
        app.MapGet(Prefix + "/diff", (HttpContext c) => Guard(h, cfg =>
        {
            int from = int.TryParse(c.Request.Query["from"], CultureInfo.InvariantCulture, out int f) ? f : Math.Max(0, cfg.Engine.CurrentRevision - 1);
            int? to = int.TryParse(c.Request.Query["to"], CultureInfo.InvariantCulture, out int t) ? t : null;
            return Json(cfg.Engine.Diff(from, to));
        })).WithSummary("changes between revisions (?from=&to=)");
        app.MapGet(Prefix + "/retrieve", () => Guard(h, cfg => Json(cfg.Engine.Retrieve())))
            .WithSummary("what Linux runs in the managed namespaces (CONFIGURED or OBTAINED)");
        app.MapGet(Prefix + "/graph", () => Guard(h, cfg => Results.Text(cfg.Engine.Graph(), "text/vnd.graphviz")))
            .WithSummary("the dependency graph (graphviz dot)");
        app.MapPost(Prefix + "/confirm", () => Guard(h, cfg => Json(new JsonObject { ["confirmed"] = cfg.Engine.Confirm() })))
            .WithSummary("keep a commit made with confirm=<s>");
        app.MapPost(Prefix + "/rollback/{rev:int}", (HttpContext c, int rev) => Guard(h, cfg =>
            Json(ConfigCommands.Txn(cfg.Engine.Rollback(rev, new TxnOptions { DryRun = Flag(c, "dry_run"), ConfirmSeconds = Seconds(c, "confirm") })))))
            .WithSummary("make the desired state that of an earlier revision");
        app.MapPost(Prefix + "/resync", (HttpContext c) => Guard(h, cfg =>
            Json(ConfigCommands.Txn(cfg.Engine.Resync(c.Request.Query["mode"].ToString() is { Length: > 0 } m ? m : "downstream")))))
            .WithSummary("read Linux back and repair (?mode=full|downstream|upstream)");

        // vpp-agent's dump endpoints: the declared items of a kind with their state.
        app.MapGet("/dump/linux/v2/interfaces", () => Guard(h, cfg => Json(Dump(cfg.Engine, d => d.Interfaces))));
        app.MapGet("/dump/linux/v2/arps", () => Guard(h, cfg => Json(Dump(cfg.Engine, d => d.ArpEntries))));
        app.MapGet("/dump/linux/v2/routes", () => Guard(h, cfg => Json(Dump(cfg.Engine, d => d.Routes))));
    }

    private static JsonArray Dump<T>(ConfigEngine e, Func<ConfigDocument, IReadOnlyList<T>> kind) where T : class
    {
        var states = e.Status().ToDictionary(s => s.Key, StringComparer.Ordinal);
        var a = new JsonArray();
        foreach (T item in kind(e.Get()))
        {
            ConfigItem ci = ConfigItem.Of(item);
            ItemStatus? s = states.GetValueOrDefault(ci.Key);
            a.Add(new JsonObject
            {
                ["key"] = ci.Key,
                ["value"] = DocumentWriter.Item(item),
                ["metadata"] = new JsonObject { ["state"] = s?.StateName ?? "PENDING", ["reason"] = s?.Reason ?? "", ["source"] = s?.Source ?? "" },
            });
        }
        return a;
    }
}
