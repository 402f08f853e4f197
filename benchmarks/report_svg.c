/* The plots: one SVG per model, evaluation set and metric (perplexity, KL from the dense
 * model) against the pruning ratio. Two panels share one logarithmic y axis: uniform and
 * adaptive widths. One colour per criterion; solid lines without compensation, dashed with
 * bias compensation; bars are ± one standard deviation over seeds; auto (the policy picks
 * the allocation) is drawn in both panels. Coordinates are printed with one decimal, so
 * the bytes depend only on the data. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

#define W 980.0
#define H 470.0
#define PW 400.0 /* panel plot area */
#define PH 300.0
#define TOP 60.0
#define LEFT1 70.0
#define LEFT2 550.0

static const char *const colours[N_CRITERIA] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                                "#9467bd", "#8c8c8c", "#000000"};

typedef struct {
    const report *r;
    const char *model, *eval;
    int kl;
    double lo, hi; /* y range, log10 */
} chart;

static double value(const crow *w, int kl, int sign)
{
    double v = kl ? w->kl + sign * w->kl_sd : w->ppl + sign * w->ppl_sd;
    return v > 1e-6 ? v : 1e-6;
}

static const crow *point(const chart *c, int crit, int adaptive, int comp, double ratio)
{
    const char *alloc = crit == N_CRITERIA - 1 ? "policy" : adaptive ? "adaptive" : "uniform";
    return report_find(c->r, c->model, report_criteria[crit], alloc, comp ? "bias" : "none",
                       c->eval, ratio);
}

/* y range over every plotted value, error bars and (perplexity) the dense line included. */
static int y_range(chart *c)
{
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < N_CRITERIA; k++)
        for (int v = 0; v < 4; v++)
            for (size_t i = 0; i < c->r->n_ratios; i++) {
                const crow *w = point(c, k, v & 1, v >> 1, c->r->ratios[i]);
                if (!w)
                    continue;
                lo = fmin(lo, value(w, c->kl, -1)), hi = fmax(hi, value(w, c->kl, 1));
                if (!c->kl)
                    lo = fmin(lo, w->dense), hi = fmax(hi, w->dense);
            }
    if (!(lo <= hi))
        return -1;
    c->lo = log10(lo) - 0.03, c->hi = log10(hi) + 0.03;
    if (c->hi - c->lo < 0.3)
        c->lo -= 0.15, c->hi += 0.15;
    return 0;
}

static double px(const chart *c, double left, double ratio)
{
    double a = c->r->ratios[0], b = c->r->ratios[c->r->n_ratios - 1];
    double t = b > a ? (ratio - a) / (b - a) : 0.5;
    return left + 20.0 + t * (PW - 40.0);
}

static double py(const chart *c, double v)
{
    return TOP + PH - (log10(v) - c->lo) / (c->hi - c->lo) * PH;
}

/* Ticks at 1, 2, 5 x 10^k (every integer multiple when the range is narrow). */
static void y_axis(sbuf *b, const chart *c, double left)
{
    int dense = c->hi - c->lo < 1.0;
    for (int e = (int)floor(c->lo) - 1; e <= (int)ceil(c->hi); e++)
        for (int m = 1; m <= 9; m++) {
            double v = m * pow(10.0, e), l = log10(v);
            if (l < c->lo || l > c->hi || (!dense && m != 1 && m != 2 && m != 5))
                continue;
            double y = py(c, v);
            sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                         "stroke=\"#e4e4e4\"/>\n", left, y, left + PW, y);
            sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                      left - 6, y + 4, v);
        }
}

static void x_axis(sbuf *b, const chart *c, double left)
{
    for (size_t i = 0; i < c->r->n_ratios; i++) {
        double x = px(c, left, c->r->ratios[i]);
        sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n",
                  x, TOP, x, TOP + PH);
        sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.2f</text>\n", x,
                  TOP + PH + 18, c->r->ratios[i]);
    }
    sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">share of FFN neurons "
                 "removed</text>\n", left + PW / 2, TOP + PH + 38);
}

static void series(sbuf *b, const chart *c, double left, int crit, int adaptive, int comp)
{
    char pts[2048] = "";
    int n = 0;
    for (size_t i = 0; i < c->r->n_ratios; i++) {
        const crow *w = point(c, crit, adaptive, comp, c->r->ratios[i]);
        if (!w)
            continue;
        double x = px(c, left, w->ratio), y = py(c, value(w, c->kl, 0));
        snprintf(pts + strlen(pts), sizeof pts - strlen(pts), "%s%.1f,%.1f", n++ ? " " : "", x, y);
        if ((c->kl ? w->kl_sd : w->ppl_sd) > 0)
            sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n",
                      x, py(c, value(w, c->kl, 1)), x, py(c, value(w, c->kl, -1)), colours[crit]);
        sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n", x, y,
                  colours[crit]);
    }
    if (n > 1)
        sb_printf(b, "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s/>\n",
                  pts, colours[crit], comp ? " stroke-dasharray=\"6 3\"" : "");
}

static void dense_line(sbuf *b, const chart *c, double left)
{
    const crow *w = point(c, 0, 0, 0, c->r->ratios[0]);
    if (c->kl || !w)
        return;
    double y = py(c, w->dense);
    sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555\" "
                 "stroke-dasharray=\"2 3\"/>\n", left, y, left + PW, y);
    sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#555\">dense %.3f</text>\n",
              left + PW - 4, y - 4, w->dense);
}

static void panel(sbuf *b, const chart *c, double left, int adaptive)
{
    sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-weight=\"bold\">%s "
                 "widths</text>\n", left + PW / 2, TOP - 8, adaptive ? "adaptive" : "uniform");
    y_axis(b, c, left);
    x_axis(b, c, left);
    sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
                 "stroke=\"#444\"/>\n", left, TOP, PW, PH);
    dense_line(b, c, left);
    for (int k = 0; k < N_CRITERIA; k++)
        for (int comp = 0; comp <= 1; comp++)
            series(b, c, left, k, adaptive, comp);
}

static void legend(sbuf *b)
{
    double y = TOP + PH + 62, x = LEFT1;
    for (int k = 0; k < N_CRITERIA; k++, x += 100) {
        sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                     "stroke-width=\"3\"/>\n", x, y - 4, x + 22, y - 4, colours[k]);
        sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", x + 27, y,
                  report_criteria[k]);
    }
    sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\">solid: no compensation; dashed: bias compensation "
                 "(mi: + least squares); bars: ± 1 sd over seeds; auto: the policy's own "
                 "allocation, in both panels</text>\n", LEFT1, y + 22);
}

/* Text for an SVG text node: markup characters become '_' (names come from the command
 * line of bench_criteria). */
static void xml_safe(char *out, size_t cap, const char *s)
{
    size_t k = 0;
    for (; *s && k + 1 < cap; s++)
        out[k++] = *s == '<' || *s == '>' || *s == '&' ? '_' : *s;
    out[k] = '\0';
}

static void eval_label(const report *r, const char *model, const char *eval, char *out,
                       size_t cap)
{
    const bench_json *j = report_model_json(r, model), *evs = bench_json_get(j, "evals");
    snprintf(out, cap, "%s", eval);
    for (size_t i = 0; evs && i < evs->n; i++)
        if (!strcmp(bench_json_str(&evs->items[i], "name", ""), eval)) {
            const char *f = bench_json_str(&evs->items[i], "file", ""), *s = strrchr(f, '/');
            snprintf(out, cap, "%s (%s, window %.0f, %.0f tokens)", eval, s ? s + 1 : f,
                     bench_json_num(&evs->items[i], "window", 0),
                     bench_json_num(&evs->items[i], "tokens", 0));
        }
}

static void plot(report *r, report_emit emit, const char *model, const char *eval, int kl)
{
    chart c = {r, model, eval, kl, 0, 0};
    char label[256], rel[256], m[64], e[64];
    if (y_range(&c))
        return;
    sbuf b = {0};
    char raw[256], name[64];
    eval_label(r, model, eval, raw, sizeof raw);
    xml_safe(label, sizeof label, raw);
    xml_safe(name, sizeof name, model);
    sb_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                  "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n",
              W, H, W, H);
    sb_printf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    sb_printf(&b, "<text x=\"%.1f\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" "
                  "font-weight=\"bold\">%s: %s vs. pruning ratio</text>\n", W / 2, name,
              kl ? "KL divergence from the dense model (nats/token)" : "perplexity");
    sb_printf(&b, "<text x=\"%.1f\" y=\"38\" text-anchor=\"middle\">evaluation: %s; "
                  "log scale</text>\n", W / 2, label);
    panel(&b, &c, LEFT1, 0);
    panel(&b, &c, LEFT2, 1);
    legend(&b);
    sb_printf(&b, "</svg>\n");
    report_file_stem(m, sizeof m, model);
    report_file_stem(e, sizeof e, eval);
    snprintf(rel, sizeof rel, "results/plots/%s-%s-%s.svg", m, e, kl ? "kl" : "perplexity");
    emit(r, rel, &b);
    free(b.p);
}

void report_plots(report *r, report_emit emit)
{
    for (size_t m = 0; m < r->n_model_names; m++)
        for (size_t e = 0; e < r->n_evals; e++)
            for (int kl = 0; kl <= 1; kl++)
                plot(r, emit, r->models[m], r->evals[e], kl);
}
