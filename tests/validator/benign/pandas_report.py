import pandas as pd
import numpy as np

df = pd.read_csv("/workspace/sales.csv", parse_dates=["date"])
df["month"] = df["date"].dt.to_period("M")
summary = (
    df.groupby(["month", "region"])
      .agg(revenue=("amount", "sum"), orders=("order_id", "nunique"))
      .reset_index()
)
summary["avg_order"] = summary["revenue"] / summary["orders"]
summary["z"] = (summary["revenue"] - summary["revenue"].mean()) / summary["revenue"].std()
filtered = summary.query("orders > 10")
result = df.eval("amount * 1.2")
pivot = summary.pivot_table(index="month", columns="region", values="revenue", aggfunc=np.sum)
pivot.to_csv("/workspace/pivot.csv")
print(filtered.head(20).to_string())
