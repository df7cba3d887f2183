using System.Text;
using System.Text.Json;
using Corral.Agent.Logging;

namespace Corral.Tests;

/// <summary>The worker's console: every line of the app gets "[PID] ", JSON objects stay JSON, and each call is one write.</summary>
public class PidLineWriterTests
{
    private sealed class Capture
    {
        public List<byte[]> Writes { get; } = [];
        public string Text => string.Concat(Writes.Select(w => Encoding.UTF8.GetString(w)));
        public void Sink(ReadOnlySpan<byte> bytes) => Writes.Add(bytes.ToArray());
    }

    private static (PidLineWriter Writer, Capture Capture) Make()
    {
        var capture = new Capture();
        return (new PidLineWriter(capture.Sink, 4242), capture);
    }

    [Fact]
    public void A_console_logger_entry_gets_the_pid_on_each_of_its_lines_in_one_write()
    {
        var (writer, capture) = Make();
        writer.Write("info: Microsoft.Hosting.Lifetime[14]\n      Now listening on: http://127.0.0.1:8000\n");
        Assert.Equal("[4242] info: Microsoft.Hosting.Lifetime[14]\n[4242]       Now listening on: http://127.0.0.1:8000\n", capture.Text);
        Assert.Single(capture.Writes);
    }

    [Fact]
    public void A_line_written_in_pieces_gets_one_prefix()
    {
        var (writer, capture) = Make();
        writer.Write("a");
        writer.Write('b');
        writer.Write("c\nd");
        writer.WriteLine();
        writer.WriteLine("e");
        writer.Write(42);
        writer.WriteLine();
        Assert.Equal("[4242] abc\n[4242] d\n[4242] e\n[4242] 42\n", capture.Text);
    }

    [Fact]
    public void Empty_lines_stay_empty()
    {
        var (writer, capture) = Make();
        writer.Write("a\n\nb\n");
        Assert.Equal("[4242] a\n\n[4242] b\n", capture.Text);
    }

    [Fact]
    public void One_json_object_per_line_is_left_alone_and_lines_after_it_are_prefixed()
    {
        var (writer, capture) = Make();
        const string json = """{"EventId":14,"LogLevel":"Information","Category":"Microsoft.Hosting.Lifetime","Message":"Now listening on: http://127.0.0.1:8000"}""";
        writer.Write(json + "\n");
        writer.WriteLine(json);
        writer.WriteLine("plain");
        var lines = capture.Text.Split('\n');
        Assert.Equal(json, lines[0]);
        Assert.Equal(json, lines[1]);
        Assert.Equal("[4242] plain", lines[2]);
        JsonDocument.Parse(lines[0]).Dispose();
    }

    [Fact]
    public void An_indented_json_object_is_left_alone_to_its_closing_brace()
    {
        var (writer, capture) = Make();
        const string json = "{\n  \"EventId\": 14,\n  \"State\": {\n    \"Message\": \"x\"\n  }\n}\n";
        writer.Write(json);
        writer.WriteLine("after");
        Assert.Equal(json + "[4242] after\n", capture.Text);
        JsonDocument.Parse(json).Dispose();
    }

    [Fact]
    public void A_json_line_split_over_calls_is_still_recognised()
    {
        var (writer, capture) = Make();
        writer.Write("{\"a\":1");
        writer.Write("}");
        writer.Write("\n");
        writer.Write("x\n");
        Assert.Equal("{\"a\":1}\n[4242] x\n", capture.Text);
    }

    [Fact]
    public void A_surrogate_pair_split_over_two_calls_encodes_as_one_character()
    {
        var (writer, capture) = Make();
        var pair = "\U0001F600";
        writer.Write(pair[0]);
        writer.Write(pair[1]);
        writer.WriteLine();
        Assert.Equal("[4242] \U0001F600\n", capture.Text);
    }
}
