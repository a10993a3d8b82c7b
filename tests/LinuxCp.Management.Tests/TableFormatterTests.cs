using System.Text.Json.Nodes;
using LinuxCp.Cli;

namespace LinuxCp.Management.Tests;

public class TableFormatterTests
{
    [Fact]
    public void Format_ArrayOfObjects_AlignedColumnsNumbersRight()
    {
        var arr = JsonNode.Parse("""[{"name":"a","count":5},{"name":"long-name","count":12345}]""");
        string[] lines = TableFormatter.Format(arr).TrimEnd('\n').Split('\n');
        Assert.Equal(3, lines.Length);
        Assert.Equal("name       count", lines[0].TrimEnd());
        Assert.Equal("a              5", lines[1]);
        Assert.Equal("long-name  12345", lines[2]);
    }

    [Fact]
    public void Format_EmptyArray_None() => Assert.Equal("(none)\n", TableFormatter.Format(new JsonArray()));

    [Fact]
    public void Format_Object_KeyValueLines() =>
        Assert.Equal("a    1\nbbb  x\n", TableFormatter.Format(JsonNode.Parse("""{"a":1,"bbb":"x"}""")));
}
