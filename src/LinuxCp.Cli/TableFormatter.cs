using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace LinuxCp.Cli;

/// <summary>Turns a JSON result into aligned text: an array of objects becomes a table whose
/// columns are the keys; an object becomes "key: value" lines.</summary>
internal static class TableFormatter
{
    public static string Format(JsonNode? node)
    {
        switch (node)
        {
            case null:
                return "";
            case JsonArray arr when arr.Count == 0:
                return "(none)\n";
            case JsonArray arr when arr.All(n => n is JsonObject):
                return Table(arr.Cast<JsonObject>().ToList());
            case JsonObject obj:
                int w = obj.Select(p => p.Key.Length).DefaultIfEmpty(0).Max();
                var sb = new StringBuilder();
                foreach (var p in obj)
                    sb.Append(CultureInfo.InvariantCulture, $"{p.Key.PadRight(w)}  {Cell(p.Value)}\n");
                return sb.ToString();
            default:
                return Cell(node) + "\n";
        }
    }

    private static string Table(List<JsonObject> rows)
    {
        var cols = new List<string>();
        foreach (JsonObject r in rows)
            foreach (var p in r)
                if (!cols.Contains(p.Key))
                    cols.Add(p.Key);
        var cells = rows.Select(r => cols.Select(c => r.TryGetPropertyValue(c, out JsonNode? v) ? Cell(v) : "").ToArray()).ToList();
        var widths = cols.Select((c, i) => Math.Max(c.Length, cells.Select(r => r[i].Length).DefaultIfEmpty(0).Max())).ToArray();
        var numeric = cols.Select((c, i) => rows.All(r => !r.TryGetPropertyValue(c, out JsonNode? v) || v is JsonValue jv && IsNumber(jv))).ToArray();
        var sb = new StringBuilder();
        void Line(string[] values, bool header)
        {
            for (int i = 0; i < values.Length; i++)
            {
                bool last = i == values.Length - 1;
                string v = !header && numeric[i] ? values[i].PadLeft(widths[i]) : last ? values[i] : values[i].PadRight(widths[i]);
                sb.Append(v);
                if (!last)
                    sb.Append("  ");
            }
            sb.Append('\n');
        }
        Line([.. cols], header: true);
        foreach (string[] r in cells)
            Line(r, header: false);
        return sb.ToString();
    }

    private static bool IsNumber(JsonValue v) => v.GetValueKind() == System.Text.Json.JsonValueKind.Number;

    private static string Cell(JsonNode? v) => v switch
    {
        null => "-",
        JsonValue jv when jv.GetValueKind() == System.Text.Json.JsonValueKind.String => jv.GetValue<string>(),
        _ => v.ToJsonString(),
    };
}
