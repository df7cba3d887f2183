using System.Text;

namespace Corral.Settings;

/// <summary>Splits CORRAL_CMD_ARGS as a POSIX shell would split words (quotes and backslashes; no expansion).</summary>
public static class ShellWords
{
    public static string[] Split(string text)
    {
        var words = new List<string>();
        var current = new StringBuilder();
        var inWord = false;
        char quote = '\0';
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (quote == '\'')
            {
                if (c == '\'') { quote = '\0'; } else { current.Append(c); }
                continue;
            }
            if (quote == '"')
            {
                if (c == '"') { quote = '\0'; }
                else if (c == '\\' && i + 1 < text.Length && text[i + 1] is '"' or '\\' or '$' or '`') { current.Append(text[++i]); }
                else { current.Append(c); }
                continue;
            }
            if (char.IsWhiteSpace(c))
            {
                if (inWord)
                {
                    words.Add(current.ToString());
                    current.Clear();
                    inWord = false;
                }
                continue;
            }
            inWord = true;
            if (c is '\'' or '"') { quote = c; }
            else if (c == '\\' && i + 1 < text.Length) { current.Append(text[++i]); }
            else { current.Append(c); }
        }
        if (quote != '\0')
        {
            throw new FormatException($"{ConfigLoader.CmdArgsVariable}: unclosed {quote} quote");
        }
        if (inWord)
        {
            words.Add(current.ToString());
        }
        return [.. words];
    }
}
