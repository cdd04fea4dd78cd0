// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rocketsim: JSON. Read with json-glib; written by hand so that numbers keep the format they
 * are given (a trace's microseconds, a report's rounded milliseconds) instead of %.17g.
 */
#include <stdio.h>

#include "rocketsim.h"

void rs_json_str(GString *s, const char *v)
{
    g_string_append_c(s, '"');
    for (const unsigned char *p = (const unsigned char *)(v ? v : ""); *p; p++) {
        switch (*p) {
        case '"': g_string_append(s, "\\\""); break;
        case '\\': g_string_append(s, "\\\\"); break;
        case '\n': g_string_append(s, "\\n"); break;
        case '\r': g_string_append(s, "\\r"); break;
        case '\t': g_string_append(s, "\\t"); break;
        default:
            if (*p < 0x20) {
                g_string_append_printf(s, "\\u%04x", *p);
            } else {
                g_string_append_c(s, (char)*p);
            }
        }
    }
    g_string_append_c(s, '"');
}

JsonNode *rs_json_load(const char *path, GError **err)
{
    g_autoptr(JsonParser) p = json_parser_new();
    if (!json_parser_load_from_file(p, path, err)) {
        return NULL;
    }
    JsonNode *root = json_parser_get_root(p);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        g_set_error(err, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: not a JSON object", path);
        return NULL;
    }
    return json_node_copy(root);
}

const char *rs_jstr(JsonObject *o, const char *key, const char *dflt)
{
    JsonNode *n = o ? json_object_get_member(o, key) : NULL;
    return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING
               ? json_node_get_string(n) : dflt;
}

double rs_jnum(JsonObject *o, const char *key, double dflt)
{
    JsonNode *n = o ? json_object_get_member(o, key) : NULL;
    if (!n || !JSON_NODE_HOLDS_VALUE(n)) {
        return dflt;
    }
    GType t = json_node_get_value_type(n);
    return t == G_TYPE_DOUBLE || t == G_TYPE_INT64 ? json_node_get_double(n) : dflt;
}
