import sqlite3
import csv

conn = sqlite3.connect("/workspace/app.db")
cur = conn.cursor()
cur.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
with open("/workspace/items.csv") as f:
    rows = [(r["name"], float(r["price"])) for r in csv.DictReader(f)]
cur.executemany("INSERT INTO items (name, price) VALUES (?, ?)", rows)
conn.commit()
for name, price in cur.execute("SELECT name, price FROM items ORDER BY price DESC LIMIT 5"):
    print(f"{name}: {price:.2f}")
conn.close()
