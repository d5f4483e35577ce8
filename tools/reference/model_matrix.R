# Reference model matrices from R's stats::model.matrix (run from the repository root):
#   Rscript tools/reference/model_matrix.R
# Writes tests/fixtures/formula/model_matrix.json: a small deterministic data frame
# (numeric and factor columns, with the factor levels in R's order) and, for each
# formula, R's column names, assign, term labels, intercept and the model matrix.
suppressMessages(library(jsonlite))
out <- "tests/fixtures/formula/"
dir.create(out, showWarnings = FALSE, recursive = TRUE)

n <- 24L
i <- seq_len(n)
d <- data.frame(
  x = round(10 * sin(i), 3),
  z = round(2 + cos(3 * i)^2 * 5, 3),
  k = as.integer((i * 7L) %% 11L - 5L),
  a = factor(c("a1", "a2", "a3")[(i %% 3L) + 1L], levels = c("a1", "a2", "a3")),
  b = factor(c("lo", "hi")[((i %/% 3L) %% 2L) + 1L], levels = c("hi", "lo")),
  c = factor(c("3", "1", "2", "1")[(i %% 4L) + 1L], levels = c("1", "2", "3")),
  res = factor(c("Suva", "rural", "urban")[((i * 5L) %% 3L) + 1L],
               levels = c("rural", "Suva", "urban")),
  educ = factor(c("lower", "none", "sec+", "upper")[((i %/% 2L) %% 4L) + 1L],
                levels = c("lower", "none", "sec+", "upper")),
  o = factor(c("low", "mid", "high", "top")[((i * 3L) %% 4L) + 1L],
             levels = c("low", "mid", "high", "top"), ordered = TRUE),
  g = factor(paste0("g", (i * 5L) %% 6L), levels = paste0("g", 0:5), ordered = TRUE)
)

cases <- list(
  list(f = "res:educ"), list(f = "res + educ:res"), list(f = "-1 + x + x:a"),
  list(f = "x + x:a + a:b"), list(f = "a + b:a"), list(f = "b:a + a"), list(f = "a:b"),
  list(f = "0 + a:b"), list(f = "a*b*c"), list(f = "a/b"), list(f = "(a+b)/c"),
  list(f = "a/(b+x)"), list(f = "(a+b+c)^2"), list(f = "(a + b + x)^3 - a:b:x"),
  list(f = "a*b - a"), list(f = "x:a"), list(f = "a:x"), list(f = "x*a*b"),
  list(f = "x:z:a"), list(f = "x + a:b:c"), list(f = "-1 + a*b"), list(f = "a + a:b + x"),
  list(f = "x + z + k"), list(f = "x*z"), list(f = "a + b"), list(f = "0 + a + b"),
  list(f = "a - 1"), list(f = "b - 1 + x"), list(f = "res + educ"), list(f = "res*educ"),
  list(f = "x + x:res - 1"), list(f = "k:a + a"), list(f = "1"), list(f = "0 + x"),
  list(f = "o"), list(f = "o + a"), list(f = "0 + o"), list(f = "o:x"), list(f = "o*b"),
  list(f = "a + b", contrasts = list(a = "contr.sum", b = "contr.helmert")),
  list(f = "a*c", contrasts = list(a = "contr.helmert", c = "contr.sum")),
  list(f = "a*b", contrasts = list(a = "contr.poly")),
  list(f = "c + a:x", contrasts = list(c = "contr.SAS")),
  list(f = "o + a", contrasts = list(o = "contr.treatment")),
  list(f = "a:b", contrasts = list(a = "contr.sum", b = "contr.sum")),
  list(f = "x + I(x^2)"), list(f = "log(z) + a"), list(f = "a + log(z):a"),
  list(f = "I(x^2):b + a"), list(f = "o + log(z)"), list(f = "b:log(z) + x"),
  list(f = "log(z) + c + a", contrasts = list(c = "contr.SAS", a = "contr.sum")),
  list(f = "log(z)*a + o", contrasts = list(a = "contr.helmert", o = "contr.treatment")),
  list(f = "I(x^2) + res", contrasts = list(res = "contr.poly")),
  list(f = "log(z) + a:b"), list(f = "-1 + log(z) + log(z):a"), list(f = "log(z):a:b"),
  list(f = "a:b + I(x^2)"), list(f = "factor(k) + a"), list(f = "factor(k):a"),
  list(f = "poly(x, 2) + a"), list(f = "poly(x, 2):b"), list(f = "scale(x) + a"),
  list(f = "0 + factor(k) + x:factor(k)"),
  list(f = "g"), list(f = "g*x"), list(f = "g + a", contrasts = list(g = "contr.helmert")),
  list(f = "g:b + b", contrasts = list(g = "contr.sum")), list(f = "g + log(z)")
)

# random formulas: 1 to 3 pieces of 1 to 3 variables joined by ':', '*' or '/',
# sometimes squared, with or without an intercept, sometimes a term removed
set.seed(20261124)
pool <- c("x", "z", "k", "a", "b", "c", "res", "o")
for (r in seq_len(60)) {
  pieces <- vapply(seq_len(sample(1:3, 1)), function(p) {
    vars <- sample(pool, sample(c(1, 1, 2, 2, 3), 1))
    piece <- paste(vars, collapse = sample(c(":", "*", "/"), 1))
    if (length(vars) > 1 && runif(1) < 0.15) piece <- paste0("(", gsub("[:*/]", " + ", piece), ")^2")
    piece
  }, character(1))
  f <- paste0(sample(c("", "", "", "0 + ", "-1 + "), 1), paste(pieces, collapse = " + "))
  if (runif(1) < 0.2) f <- paste(f, "-", sample(pool, 1))
  cases[[length(cases) + 1L]] <- list(f = f, random = TRUE)
}

records <- lapply(cases, function(cs) {
  fo <- as.formula(paste("~", cs$f))
  tt <- terms(fo)
  mm <- if (is.null(cs$contrasts)) model.matrix(fo, d) else
    model.matrix(fo, d, contrasts.arg = cs$contrasts)
  list(formula = cs$f, contrasts = if (is.null(cs$contrasts)) NULL else cs$contrasts,
       column_names = I(colnames(mm)), assign = I(attr(mm, "assign")),
       term_labels = I(attr(tt, "term.labels")), intercept = attr(tt, "intercept") == 1,
       matrix = unname(lapply(seq_len(nrow(mm)), function(r) I(unname(mm[r, ])))))
})

factors <- names(d)[vapply(d, is.factor, logical(1))]
data_out <- list(
  columns = lapply(d, function(v) if (is.factor(v)) as.character(v) else v),
  levels = lapply(d[factors], levels),
  ordered = names(d)[vapply(d, is.ordered, logical(1))]
)
write_json(list(r_version = R.version.string, data = data_out, cases = records),
           paste0(out, "model_matrix.json"), digits = NA, auto_unbox = TRUE, null = "null",
           pretty = FALSE)
